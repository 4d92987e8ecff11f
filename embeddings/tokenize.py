"""Chinese tokenization for lexical (BM25) search: jieba with the contest's domain dictionary.

Domain terms in ``userdict.txt`` (创客中国, 专精特新, 小微企业创业创新基地, AI+工业, ...) come out
as one token. Text is NFKC-normalised (full-width letters and digits become ASCII), tokens are
lower-cased, and punctuation, whitespace and common function words are dropped.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import multiprocessing
import os
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable
from importlib import metadata, resources
from typing import Any

__all__ = [
    "STOPWORDS",
    "content_word",
    "domain_terms",
    "load_tagger",
    "tokenize",
    "tokenize_many",
    "tokenizer_version",
    "words",
]

#: Bump when what :func:`tokenize` returns for a text changes in code (saved BM25 indexes key on it).
TOKENIZER_VERSION = 1

#: Function words and filler that carry no matching signal.
STOPWORDS: frozenset[str] = frozenset(
    """
    的 了 和 与 及 以及 或 或者 并 并且 而 而且 等 等等 是 在
    于 为 对 以 将 把 被 由 从 向 也 又 都 就 还 其 之 所
    该 此 这 那 这些 那些 这个 一个 一种 一些 我们 我 你 他 她
    它 他们 本 各 每 有 没有 无 及其 通过 进行 可以 能够 可 能
    会 已 已经 要 不 很 更 最 中 上 下 内 外 个 种 年 月 日
    如 如果 因为 所以 但 但是 则 即 并非 之一 方面 相关 包括
    其中 主要 目前 具有 提供
    a an and are as at be by for from in is it of on or that the this to with
    """.split()  # noqa: SIM905 - a word list reads better than 120 quoted items
)

_USERDICT = "userdict.txt"
#: Minimum jieba frequency of a domain term. jieba's own suggestion only stops a term splitting
#: into its parts; it still loses to overlapping dictionary words ("产业|基金项目" in
#: "产业基金项目"). 2,000 keeps every term whole in context while changing the cut of about
#: 2% of unrelated company descriptions (raising the total frequency shifts all word odds).
_TERM_MIN_FREQ = 2000
_lock = threading.Lock()
_tokenizer: Any = None
_tagger: Any = None
#: Parts of speech (jieba's tags) of words that name things: nouns, proper and technical nouns,
#: verbal and adjectival nouns, abbreviations, set phrases, Latin-letter words.
#: (Place names, ns, are left out: the region has its own reason.)
_NAMING_TAGS = frozenset({"n", "nz", "nt", "nw", "nr", "nrt", "nrfg", "vn", "an", "j", "l", "eng"})
#: Parts of speech that never carry a match alone, however rare the word: pronouns, conjunctions,
#: prepositions, particles, numerals, measure words, place and time words, interjections.
_FUNCTION_TAGS = frozenset(
    {
        "r",
        "c",
        "p",
        "u",
        "uj",
        "ul",
        "uz",
        "ug",
        "uv",
        "ud",
        "m",
        "mq",
        "q",
        "f",
        "s",
        "t",
        "tg",
        "y",
        "e",
        "o",
    }
)
#: A word this common in general Chinese (jieba's dictionary counts; 地方 52,641, 时 103,735) names
#: nothing in particular, noun or not.
_COMMON_FREQ = 20_000
#: A word this rare in general Chinese (巡检 89, 定制 324) is a term of its trade, whatever its part
#: of speech; above it a verb, adjective or adverb is everyday language (看到 13,411, 为难 429).
#: A trade's own terms that general Chinese lacks (冷链, 复购) belong in the domain dictionary.
_RARE_FREQ = 400
#: Runs of characters jieba never joins a word across (whitespace and punctuation, all outside its
#: word-character class): a text's tokens are the concatenation of its pieces' tokens, so a piece
#: is tokenized once and reused (a description's clauses, the profile documents holding them).
_PIECE_SPLIT = re.compile(r"[\s，。；、,;!！?？：:（）()【】\[\]《》“”\"|/]+")
_PIECE_CACHE = 65_536
#: Distinct pieces from which a batch is cut in parallel (forking costs about a tenth of a second).
_PARALLEL_MIN_PIECES = 20_000
_PARALLEL_CHUNK = 2_000


def domain_terms() -> list[str]:
    """Return the domain terms of the shipped user dictionary, in file order."""
    text = resources.files(__package__ or "embeddings").joinpath(_USERDICT).read_text("utf-8")
    terms = []
    for line in text.splitlines():
        word = line.strip().split(" ")[0] if line.strip() else ""
        if word and not word.startswith("#"):
            terms.append(word)
    return terms


def _get_tokenizer() -> Any:
    """Return the process-wide jieba tokenizer, built once (thread-safe, no console output)."""
    global _tokenizer
    if _tokenizer is not None:
        return _tokenizer
    with _lock:
        if _tokenizer is None:
            with warnings.catch_warnings():
                # jieba 0.42.1 writes regexes as non-raw strings (a "\." escape): compiling
                # it without a .pyc warns (DeprecationWarning on 3.11, SyntaxWarning on
                # 3.12+), and with setuptools < 81 installed it imports pkg_resources.
                for category in (DeprecationWarning, SyntaxWarning):
                    warnings.filterwarnings("ignore", message="invalid escape sequence", category=category)
                warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
                warnings.filterwarnings("ignore", message="Deprecated call to `pkg_resources")
                import jieba

            # jieba logs "Building prefix dict ..." at DEBUG on its own logger; keep it quiet.
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for term in domain_terms():
                # Text is matched in its original case, so register the case variants too.
                for variant in dict.fromkeys((term, term.lower(), term.upper())):
                    freq = max(tokenizer.suggest_freq(variant, False), _TERM_MIN_FREQ)
                    tokenizer.add_word(variant, freq)
            _tokenizer = tokenizer
    return _tokenizer


def _is_word(token: str) -> bool:
    """Return whether a token has a letter or digit (not punctuation or space)."""
    return any(ch.isalnum() for ch in token)


def _keep(token: str) -> bool:
    """Return whether a token carries meaning: it has a letter or digit and is no stopword."""
    return _is_word(token) and token not in STOPWORDS


def tokenize(text: str | None, *, for_search: bool = True) -> list[str]:
    """Return the lower-cased tokens of text for lexical search.

    Args:
        text: any text; None or blank gives an empty list.
        for_search: also emit the dictionary words inside long words (jieba's search mode:
            "中小企业" gives "中小", "企业", "小企业", "中小企业"), which helps recall. False gives
            jieba's precise mode, one token per word.
    """
    if not text or not text.strip():
        return []
    pieces = _PIECE_SPLIT.split(text)
    return [token for piece in pieces if piece for token in _piece_tokens(piece, for_search)]


@functools.lru_cache(maxsize=65_536)
def words(text: str) -> tuple[str, ...]:
    """Return the words of a short text as it reads: jieba's precise mode with the domain dictionary,
    lower-cased, stopwords kept (only spaces and punctuation dropped). For deciding what may be quoted
    (「通过大赛认识更多」 holds 通过 and 更多), not for search (remembered per text)."""
    normalized = unicodedata.normalize("NFKC", text or "")
    if _get_tokenizer().FREQ.get(
        normalized
    ):  # a dictionary word reads as itself: no cutting (the usual case)
        return (normalized.strip().lower(),) if _is_word(normalized) else ()
    return tuple(
        w for piece in _PIECE_SPLIT.split(normalized) if piece for w in _cut(piece, for_search=False)
    )


@functools.lru_cache(maxsize=65_536)
def content_word(word: str) -> bool:
    """Return whether a word names something (what a shared keyword must end in): a term of the
    domain dictionary; else a noun-like word that is not among the most common in general Chinese;
    else a word of general Chinese rare in it that is no function word (巡检, 存证). A place name
    never is (徐州, 南通, 石嘴山): the region has its own reason.
    「台灯」「冷链」 do, 「看到」「手里」「很多」「时」 do not."""
    tokenizer = _get_tokenizer()
    text = unicodedata.normalize("NFKC", word or "").strip().lower()
    if not text or not _is_word(text):
        return False
    if text in _domain_words():
        return True
    if text.isascii():
        return any(ch.isalpha() for ch in text)  # "mems", "saas"; not "2024"
    freq = int(tokenizer.FREQ.get(text, 0))
    if not freq:  # a run jieba's HMM joined (「比约」 of 占比约, 「半内」 of 一年半内), no word it knows
        return False
    tag = _tag(text)
    if _is_place_name(text, tag):
        return False
    if tag in _NAMING_TAGS:
        return freq < _COMMON_FREQ
    return freq < _RARE_FREQ and tag not in _FUNCTION_TAGS


#: Suffixes of administrative divisions: a word whose suffixed form the dictionary tags as a place
#: is a place's bare name (南通 of 南通市, 合肥 of 合肥市), whatever its own tag.
_DIVISION_SUFFIXES = ("市", "县", "省")


def _is_place_name(word: str, tag: str) -> bool:
    """Return whether a word is a place name: tagged ns, or the stem of a division the dictionary
    tags ns (「南通」 is tagged nz, 「合肥」 n, but 「南通市」「合肥市」 are places). A run shaped like a
    division (「苏州市」「海淀区」) is judged by its shape: :func:`matching.explain.is_place`."""
    if tag == "ns":
        return True
    return len(word) >= 2 and any(_tag(word + suffix) == "ns" for suffix in _DIVISION_SUFFIXES)


@functools.cache
def _domain_words() -> frozenset[str]:
    return frozenset(t.lower() for t in domain_terms())


def load_tagger() -> None:
    """Build the tokenizer and the part-of-speech table now (about a second), not on the first
    reason that quotes a keyword."""
    _tag("")


def _tag(word: str) -> str:
    """Return jieba's part of speech of one word ("x" when its dictionary has none)."""
    global _tagger
    if _tagger is None:
        tokenizer = _get_tokenizer()  # (takes the lock itself: not inside it)
        with _lock:
            if _tagger is None:
                import jieba.posseg

                _tagger = jieba.posseg.POSTokenizer(tokenizer)
    tags = _tagger.word_tag_tab
    return str(tags.get(word, "x"))


def tokenize_many(texts: Iterable[str | None], *, for_search: bool = True) -> list[list[str]]:
    """Return :func:`tokenize` of every text, tokenizing each distinct piece of the batch once.

    For indexing many records at once: pieces shared by texts (a province, a boilerplate clause,
    an industry) are cut by jieba once, and the batch leaves the query-time piece cache alone.
    """
    split = [_PIECE_SPLIT.split(text) if text and text.strip() else [] for text in texts]
    distinct = list(dict.fromkeys(piece for pieces in split for piece in pieces if piece))
    cuts = dict(zip(distinct, _cut_pieces(distinct, for_search), strict=True))
    return [[token for piece in pieces if piece for token in cuts[piece]] for pieces in split]


def _processes() -> int:
    """Return how many processes may cut a large batch: the cores (MATCH_TOKENIZE_PROCESSES caps it),
    and one unless this is the only thread of the process (a fork copies no other thread's locks)."""
    raw = os.environ.get("MATCH_TOKENIZE_PROCESSES", "")
    wanted = int(raw) if raw.isdigit() and int(raw) > 0 else (os.cpu_count() or 1)
    if threading.active_count() > 1 or threading.current_thread() is not threading.main_thread():
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return wanted


def _cut_chunk(args: tuple[list[str], bool]) -> list[tuple[str, ...]]:
    pieces, for_search = args
    return [_cut_piece(piece, for_search) for piece in pieces]


def _cut_pieces(pieces: list[str], for_search: bool) -> list[tuple[str, ...]]:
    """Return the tokens of each piece; a large batch is cut by forked processes, one per core."""
    processes = _processes() if len(pieces) >= _PARALLEL_MIN_PIECES else 1
    if processes <= 1:
        return _cut_chunk((pieces, for_search))
    _get_tokenizer()  # built once here, inherited by the forked processes
    chunks = [(pieces[i : i + _PARALLEL_CHUNK], for_search) for i in range(0, len(pieces), _PARALLEL_CHUNK)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return [cut for part in pool.imap(_cut_chunk, chunks) for cut in part]


@functools.cache
def tokenizer_version() -> str:
    """Return a key of everything :func:`tokenize`'s output depends on (code version, dictionary,
    stopwords, jieba's version): saved token data made under another key is not reused."""
    userdict = resources.files(__package__ or "embeddings").joinpath(_USERDICT).read_bytes()
    try:
        jieba_version = metadata.version("jieba")
    except metadata.PackageNotFoundError:  # pragma: no cover - jieba is a dependency
        jieba_version = "unknown"
    parts = [str(TOKENIZER_VERSION), str(_TERM_MIN_FREQ), jieba_version, " ".join(sorted(STOPWORDS))]
    digest = hashlib.sha256("\n".join(parts).encode("utf-8"))
    digest.update(userdict)
    return f"jieba-{jieba_version}-v{TOKENIZER_VERSION}-{digest.hexdigest()[:16]}"


@functools.lru_cache(maxsize=_PIECE_CACHE)
def _piece_tokens(piece: str, for_search: bool) -> tuple[str, ...]:
    """Return the kept tokens of one piece of text (no separator inside; see _PIECE_SPLIT)."""
    return _cut_piece(piece, for_search)


def _cut(piece: str, for_search: bool) -> list[str]:
    """Return the lower-cased words of one piece that have a letter or digit, stopwords included."""
    normalized = unicodedata.normalize("NFKC", piece)
    tokenizer = _get_tokenizer()
    cut = tokenizer.lcut_for_search(normalized) if for_search else tokenizer.lcut(normalized)
    return [t for t in (w.strip().lower() for w in cut) if t and _is_word(t)]


def _cut_piece(piece: str, for_search: bool) -> tuple[str, ...]:
    """Return the kept tokens of one piece (no stopword), uncached."""
    return tuple(t for t in _cut(piece, for_search) if _keep(t))
