"""Fixtures of the matching tests: a tiny deterministic embedder and a small contest world."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from matching.service import MatchingService
from matching.types import InstitutionProfile, PortfolioItem, ProjectProfile

DIM = 64


class FakeEmbedder:
    """Hash character bigrams and words into DIM buckets: similar texts get similar vectors."""

    name = "fake-bigram"
    dim = DIM

    def _encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            compact = re.sub(r"\s+", "", text.lower())
            grams = [compact[i : i + 2] for i in range(len(compact) - 1)] or [compact]
            for g in grams:
                h = int(hashlib.md5(g.encode()).hexdigest()[:8], 16)
                out[row, h % DIM] += 1.0
            out[row, 0] += 0.5  # a shared component, like the common direction of real e5 vectors
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        return self._encode(texts)


def simple_tokenize(text: str) -> list[str]:
    """Split Chinese into characters bigrams and Latin into words (fast, no jieba)."""
    tokens: list[str] = []
    for chunk in re.findall(r"[a-z0-9]+|[\u4e00-\u9fff]+", (text or "").lower()):
        if chunk.isascii():
            tokens.append(chunk)
        else:
            tokens.extend(chunk[i : i + 2] for i in range(max(len(chunk) - 1, 1)))
    return tokens


PROJECTS = [
    ProjectProfile(
        1,
        "智影医疗",
        "基于深度学习的医学影像辅助诊断系统，服务基层医院。",
        ("医疗健康", "人工智能"),
        province="江苏省",
        city="南京市",
        stage="成长期",
        amount_wan=2000,
        award="一等奖",
        group="企业组",
        needs=("融资", "检验检测", "知识产权"),
    ),
    ProjectProfile(
        2,
        "新材科技",
        "高性能碳纤维复合材料，应用于轻量化汽车部件。",
        ("新材料",),
        province="江苏省",
        city="苏州市",
        stage="扩张期",
        amount_wan=30,
        award="三等奖",
        group="企业组",
        needs=("融资", "落地"),
    ),
    ProjectProfile(
        3,
        "丘陵农机",
        "丘陵山区小型农业机械，电动化与智能控制。",
        ("智能装备",),
        province="四川省",
        city="成都市",
        stage="初创期",
        amount_wan=500,
        award="无",
        group="创客组",
        needs=("落地", "工业设计"),
    ),
    ProjectProfile(
        4,
        "慧眼质检",
        "工业视觉缺陷检测，人工智能识别产品表面瑕疵。",
        ("人工智能", "智能装备"),
        province="浙江省",
        city="杭州市",
        stage="成长期",
        amount_wan=1500,
        award="二等奖",
        group="企业组",
        needs=("融资", "数字化改造"),
    ),
    ProjectProfile(
        5,
        "康复机器人",
        "上肢康复训练机器人，医院与社区康复中心使用。",
        ("医疗健康", "智能装备"),
        province="江苏省",
        city="南京市",
        stage="研发样机",
        amount_wan=800,
        award="优胜奖",
        group="创客组",
        needs=("融资",),
    ),
    ProjectProfile(
        6,
        "储能电芯",
        "固态电池储能电芯与电池管理系统。",
        ("新能源",),
        province="广东省",
        city="深圳市",
        stage="成长期",
        amount_wan=5000,
        award="50强",
        group="企业组",
        needs=("融资", "落地", "检验检测"),
    ),
]

INSTITUTIONS = [
    InstitutionProfile(
        101,
        "苏医创投",
        "创业投资机构",
        "专注医疗健康与人工智能医学影像、医疗器械的早中期投资。",
        industries=("医疗健康", "人工智能"),
        stages=("成长期", "扩张期"),
        province="江苏省",
        city="南京市",
        ticket_min_wan=1000,
        ticket_max_wan=5000,
        portfolio=(PortfolioItem(5, "2024-03-01", "天使轮", ("医疗健康",), "financing"),),
    ),
    InstitutionProfile(
        102,
        "材料基金",
        "政府投资基金",
        "投资新材料、碳纤维与复合材料产业链。",
        industries=("新材料",),
        stages=("扩张期", "成熟期"),
        province="江苏省",
        city="苏州市",
        ticket_min_wan=500,
        ticket_max_wan=3000,
    ),
    InstitutionProfile(
        103,
        "能源资本",
        "创业投资机构",
        "新能源、储能与动力电池的成长期投资。",
        industries=("新能源",),
        stages=("成长期",),
        province="广东省",
        city="深圳市",
        ticket_min_wan=2000,
        ticket_max_wan=10000,
        portfolio=(
            PortfolioItem(6, "2023-05-01", "A轮", ("新能源",), "financing"),
            PortfolioItem(2, "2022-05-01", "天使轮", ("新材料",), "financing"),
        ),
    ),
    InstitutionProfile(
        201,
        "南京智造基地",
        "小微企业创业创新基地",
        "智能装备与医疗器械孵化，提供厂房与检测。",
        industries=("智能装备", "医疗健康"),
        province="江苏省",
        city="南京市",
        services=("检验检测", "工业设计"),
        space_m2=20000,
    ),
    InstitutionProfile(
        202,
        "成都农机园",
        "产业示范基地/园区",
        "农业机械与智能农机产业园区。",
        industries=("智能装备",),
        province="四川省",
        city="成都市",
        services=("工业设计",),
    ),
    InstitutionProfile(
        301,
        "检测公共服务平台",
        "中小企业公共服务平台",
        "检验检测、知识产权与数字化改造服务。",
        province="江苏省",
        city="南京市",
        services=("检验检测", "知识产权", "数字化改造"),
    ),
    InstitutionProfile(
        302,
        "设计服务平台",
        "中小企业公共服务平台",
        "工业设计与法律服务。",
        province="浙江省",
        city="杭州市",
        services=("工业设计", "法律"),
    ),
]


@pytest.fixture(scope="session")
def projects() -> list[ProjectProfile]:
    return list(PROJECTS)


@pytest.fixture(scope="session")
def institutions() -> list[InstitutionProfile]:
    return list(INSTITUTIONS)


@pytest.fixture(scope="session")
def tokenizer() -> Callable[[str], list[str]]:
    return simple_tokenize


@pytest.fixture(scope="session")
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture()
def vectors(embedder: FakeEmbedder) -> tuple[dict[int, NDArray[np.float32]], dict[int, NDArray[np.float32]]]:
    pv = embedder.encode_documents([p.text for p in PROJECTS])
    iv = embedder.encode_documents([i.text for i in INSTITUTIONS])
    return (
        {p.id: pv[j] for j, p in enumerate(PROJECTS)},
        {i.id: iv[j] for j, i in enumerate(INSTITUTIONS)},
    )


@pytest.fixture()
def service(embedder: FakeEmbedder, vectors, tmp_path) -> MatchingService:
    svc = MatchingService(embedder, index_dir=tmp_path / "index", save_delay_s=0, tokenizer=simple_tokenize)
    svc.load(PROJECTS, INSTITUTIONS, vectors[0], vectors[1])
    return svc
