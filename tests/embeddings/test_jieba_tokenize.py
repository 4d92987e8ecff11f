"""Tokenizer: domain terms stay whole, noise is dropped, English stays word by word."""

from __future__ import annotations

import threading

import pytest

from embeddings import domain_terms, tokenize
from embeddings.tokenize import content_word


def test_user_dictionary_ships_the_contest_terms() -> None:
    terms = domain_terms()
    assert len(terms) >= 150
    assert len(set(terms)) == len(terms)
    for term in ("创客中国", "专精特新", "小微企业创业创新基地", "AI+工业", "钙钛矿", "大模型"):
        assert term in terms


@pytest.mark.parametrize("for_search", [True, False])
def test_every_domain_term_comes_out_whole_in_a_sentence(for_search: bool) -> None:
    broken = [
        term
        for term in domain_terms()
        if term.lower() not in tokenize(f"我们的{term}项目获得支持", for_search=for_search)
    ]
    assert broken == []


def test_precise_mode_does_not_split_domain_terms() -> None:
    assert tokenize("小微企业创业创新基地提供检验检测服务", for_search=False) == [
        "小微企业创业创新基地",
        "检验检测",
        "服务",
    ]


def test_search_mode_adds_the_shorter_words_for_recall() -> None:
    tokens = tokenize("公共服务平台")
    assert "公共服务平台" in tokens
    assert "服务" in tokens and "平台" in tokens


def test_punctuation_stopwords_and_case_are_normalised() -> None:
    tokens = tokenize("创客中国：专精特新的ＡＩ+工业、Deep Learning！！")
    assert "ai+工业" in tokens
    assert "deep" in tokens and "learning" in tokens
    assert "的" not in tokens
    assert not any(t in {"：", "、", "！", "!", " "} for t in tokens)
    assert all(t == t.lower() for t in tokens)


def test_blank_input_gives_no_tokens() -> None:
    assert tokenize("") == []
    assert tokenize(None) == []
    assert tokenize(" \n\t，。") == []


def test_concurrent_tokenization_gives_identical_results() -> None:
    text = "面向中小企业的工业互联网平台与数字孪生解决方案"
    expected = tokenize(text)
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(tokenize(text))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 8


@pytest.mark.parametrize(
    ("word", "names"),
    [
        ("台灯", True),  # a noun
        ("减速器", True),
        ("巡检", True),  # a verb, but rare in general Chinese: a term of the trade
        ("冷链", True),  # general Chinese lacks it: the domain dictionary has it
        ("智能制造", True),
        ("mems", True),
        ("看到", False),  # an everyday verb
        ("很多", False),  # a numeral
        ("手里", False),  # a place word
        ("时", False),  # a noun, but among the most common words
        ("徐州", False),  # a place: the region has its own reason
        ("石嘴山", False),  # a rare place name is still a place
        ("南通", False),  # tagged nz, but 南通市 is a place: its bare name is one too
        ("合肥", False),  # tagged n, the same
        ("比约", False),  # jieba's HMM joined 比 and 约 (占比约30%): no word it knows
        ("2024", False),
    ],
)
def test_content_words_name_something(word: str, names: bool) -> None:
    assert content_word(word) is names


def test_content_word_works_in_a_fresh_process_before_any_other_cut() -> None:
    # (it builds the tokenizer and the tagger under one lock: taken twice, the process hung)
    import subprocess
    import sys

    code = "from embeddings.tokenize import content_word; print(content_word('台灯'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True"
