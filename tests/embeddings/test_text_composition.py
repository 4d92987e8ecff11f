"""Text composition: deterministic, labelled, description first, bounded in length."""

from __future__ import annotations

from embeddings import institution_text, need_text, project_text, text_hash, truncate
from embeddings.text import FIELD_MAX_CHARS, MAX_CHARS


def test_project_text_puts_description_first_then_labelled_fields() -> None:
    text = project_text(
        name="智瞳医疗",
        description="基于深度学习的医学影像辅助诊断系统。",
        industry=["医疗器械", "人工智能"],
        track="数字医疗",
        team="博士团队5人",
        ip="发明专利3项",
        needs=["融资", "落地"],
    )
    assert text == (
        "基于深度学习的医学影像辅助诊断系统。\n"
        "项目：智瞳医疗；行业：医疗器械、人工智能；赛道：数字医疗；团队：博士团队5人；"
        "知识产权：发明专利3项；需求：融资、落地"
    )


def test_empty_parts_are_skipped_and_whitespace_collapsed() -> None:
    assert project_text("  ", None, [], None, "", None, ["", " 融资 "]) == "需求：融资"
    assert project_text("A", "  多个   空格\n换行 ", None) == "多个 空格 换行\n项目：A"
    assert project_text(None, None) == ""


def test_repeated_list_values_appear_once_in_order() -> None:
    assert institution_text(None, None, None, ["新材料", "储能", "新材料"]) == "行业：新材料、储能"


def test_institution_and_need_texts_use_their_labels() -> None:
    assert institution_text(
        "某市天使投资引导基金",
        "政府投资基金",
        "重点投向早期科技企业。",
        ["集成电路"],
        ["初创期", "成长期"],
        None,
    ) == (
        "重点投向早期科技企业。\n"
        "机构：某市天使投资引导基金；类型：政府投资基金；行业：集成电路；阶段：初创期、成长期"
    )
    assert need_text("寻找早期医疗项目", "", ["医疗器械"], "初创期", ["检验检测"]) == (
        "需求：寻找早期医疗项目；行业：医疗器械；阶段：初创期；服务：检验检测"
    )


def test_same_values_give_the_same_hash() -> None:
    values = dict(name="X", description="描述", industry=("储能",), needs=("融资",))
    assert text_hash(project_text(**values)) == text_hash(project_text(**values))  # type: ignore[arg-type]


def test_long_texts_stay_within_budget_and_keep_fields() -> None:
    description = "钙钛矿叠层电池中试线建设与工艺验证。" * 200
    text = project_text("光伏项目", description, "光伏新能源", team="很长的团队介绍" * 100)
    assert len(text) <= MAX_CHARS
    assert text.startswith("钙钛矿叠层电池")
    assert "行业：光伏新能源" in text
    team_field = text.split("团队：")[1].split("；")[0]
    assert len(team_field) <= FIELD_MAX_CHARS


def test_truncate_prefers_a_sentence_end() -> None:
    text = "第一句话比较长一些。" * 3 + "没有句号的尾巴" * 5
    cut = truncate(text, 40)
    assert cut.endswith("。") and len(cut) <= 40
    assert truncate("没有标点" * 20, 10) == "没有标点没有标点没有"
    assert truncate("短", 10) == "短"
    assert truncate("任何", 0) == ""
