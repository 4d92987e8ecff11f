"""Precision and recall of the duplicate-project detector on a labelled set built from the demo projects.

The set: every demo project, plus variants of some of them made by transformation: sentences reordered,
lightly edited (numbers changed, a sentence dropped, a phrase added), the company suffix changed
(有限公司 -> 股份有限公司 ...) and, for a few, the description translated into English by hand. Each
(original, variant) pair is a labelled duplicate. Labelled non-duplicates are the pairs of different demo
projects of the same industry (same topic) whose names share little; pairs of demo projects with close
names are left unlabelled (the demo itself holds a few same-project-other-contest entries).

The detector runs as the service runs it (app.intake.duplicates: nearest stored vectors, then the
verdict of app.intake.similarity), so the figures hold for `flask duplicates scan`.

    python bench/bench_duplicates.py [--model e5] [--variants 120] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.intake.duplicates import VectorTable, fingerprint, judge_candidates
from app.intake.similarity import overlap, shingles
from embeddings import load_embedder, project_text, text_hash

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "app" / "demo" / "data" / "projects.json"
SHIPPED = ROOT / "app" / "demo" / "data" / "vectors.npz"
CACHE = ROOT / ".cache" / "bench_duplicates_vectors.npz"

#: Hand translations of a few demo descriptions (index into projects.json -> English name, description).
TRANSLATED: dict[int, tuple[str | None, str]] = {
    1: (
        None,
        "Conventional plastic mulch film stays in the soil for decades without degrading. Founded in 2019 "
        "in Daqing, the company develops, produces and sells "
        "bio-based biodegradable plastics. Using straw and "
        "other non-food biomass as feedstock, it synthesises "
        "degradable polyester with its own catalyst system "
        "at a low raw-material cost. Under composting the material largely degrades within seven months, and "
        "its mechanical properties meet the needs of mulch "
        "film and shopping bags. The project is listed in the "
        "provincial insurance compensation catalogue for "
        "first-batch new materials. Next it will build testing "
        "equipment and an R&D platform, needing about 13 million yuan.",
    ),
    2: (
        "Nucleic acid drug delivery system",
        "Nucleic acid drugs have huge potential, but delivery systems are "
        "locked up by the patents of a few foreign companies. "
        "Our company built a delivery system for nucleic "
        "acid drugs. Its self-developed ionisable lipid "
        "structure avoids existing patents and delivers clearly "
        "better outside the liver. A GMP pilot plant with "
        "kilogram-scale capacity is in place. The team has 196 "
        "people, about 32% in R&D, with core members from large CROs. We seek bank technology loans of 20 "
        "million yuan for clinical trials.",
    ),
    10: (
        None,
        "Chery is a brand of Beijing Cheyun Electronic Technology Co., Ltd., which launched its first "
        "analog front-end chip for battery management in 2015. The chip supports daisy-chain cascading and "
        "suits large energy-storage systems. Energy storage and electric two-wheelers alone need hundreds of "
        "millions of such chips a year. Sales last year were about 154 million yuan, 51% from repeat "
        "customers. We hope for bank technology credit of 8 million yuan for automotive certification and "
        "reliability testing.",
    ),
    40: (
        "Smart greenhouse tomato growing system",
        "The idea first came up in a contract research project "
        "during the founder's master's studies. The system adjusts the greenhouse climate automatically from "
        "a crop growth model and environmental data, raising yield per mu by about 46% over conventional "
        "greenhouses. Substrate cultivation and rainwater recycling use only a fraction of the water of "
        "conventional growing. We visited 14 potential users and confirmed the need is real and they are "
        "willing to pay for it.",
    ),
    77: (
        None,
        "Hangzhou Yuan'an Automation Technology Co., Ltd.'s heavy-duty AGV transport robots now serve "
        "65 customers in warehousing, logistics and heavy manufacturing. A single vehicle carries up to 70 "
        "tonnes, and several vehicles together can move even "
        "larger workpieces. Next the company will focus on "
        "developing core components, with a funding need of about 11.5 million yuan.",
    ),
    120: (
        "Pipeline inspection crawler robot",
        "Nobody can see inside hazardous-chemical pipelines; manual "
        "inspection is risky and shutdowns are expensive. The explosion-proof design meets chemical-plant "
        "requirements, and one deployment inspects several hundred metres of pipe. What we need most is a "
        "pilot site and a partner who knows the market.",
    ),
}

_SENT = re.compile(r"(?<=[。！？；])")
_SUFFIX = re.compile(r"(股份有限公司|有限责任公司|有限公司)")
_SWAP = {"有限公司": "股份有限公司", "股份有限公司": "有限公司", "有限责任公司": "股份有限公司"}


def sentences(text: str) -> list[str]:
    return [s for s in _SENT.split(text) if s]


def reorder(p: dict, rng: random.Random) -> dict:
    parts = sentences(p["description"])
    shuffled = parts[:]
    while len(parts) > 1 and shuffled == parts:
        rng.shuffle(shuffled)
    return {**p, "description": "".join(shuffled)}


def edit(p: dict, rng: random.Random) -> dict:
    parts = sentences(p["description"])
    if len(parts) > 3:
        parts.pop(rng.randrange(1, len(parts)))  # drop one sentence (not the first)
    text = "".join(parts)
    text = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), text, count=2)  # changed figures
    text = text.replace("，", "，目前", 1) + "欢迎有意向的机构联系。"
    return {**p, "description": text, "name": p["name"] + ("项目" if not p["name"].endswith("项目") else "")}


def suffix(p: dict, rng: random.Random) -> dict:
    text = p["description"]
    if _SUFFIX.search(text):
        text = _SUFFIX.sub(lambda m: _SWAP[m.group()], text, count=1)
    else:
        text = "本项目由团队注册的科技有限公司实施。" + text
    return {**reorder({**p, "description": text}, rng), "name": p["name"] + "（股份公司）"}


def translate(p: dict, index: int) -> dict:
    name, description = TRANSLATED[index]
    return {**p, "name": name or p["name"], "description": description}


def build(
    projects: list[dict], n_variants: int, seed: int
) -> tuple[list[dict], set[tuple[int, int]], dict, set]:
    """Return (pool, duplicate pairs, transform of each variant, same-topic non-duplicate pairs)."""
    rng = random.Random(seed)
    pool = [dict(p) for p in projects]
    truth: set[tuple[int, int]] = set()
    how: dict[int, str] = {}
    with_company = [i for i, p in enumerate(projects) if _SUFFIX.search(p["description"])]
    picks = rng.sample(range(len(projects)), n_variants)
    transforms = [("reordered", reorder), ("edited", edit), ("suffix changed", suffix)]
    for k, i in enumerate(picks):
        label, fn = transforms[k % len(transforms)]
        if label == "suffix changed" and with_company:
            i = with_company[k % len(with_company)]
        pool.append(fn(projects[i], rng))
        how[len(pool) - 1] = label
        truth.add((i, len(pool) - 1))
    for i in TRANSLATED:
        pool.append(translate(projects[i], i))
        how[len(pool) - 1] = "translated"
        truth.add((i, len(pool) - 1))
    names = [shingles(p["name"], 2) for p in projects]
    negatives = {
        (a, b)
        for a in range(len(projects))
        for b in range(a + 1, len(projects))
        if projects[a]["industry"] == projects[b]["industry"] and overlap(names[a], names[b]) < 0.3
    }
    return pool, truth, how, negatives


def encode_cached(embedder: object, texts: list[str]) -> tuple[np.ndarray, int]:
    """Return the vectors of the texts (n, dim): shipped "
    "demo vectors and cached ones reused, others encoded."""
    known: dict[str, np.ndarray] = {}
    for path in (SHIPPED, CACHE):
        if path.is_file():
            z = np.load(path, allow_pickle=False)
            if str(z["model"]) == embedder.name:  # type: ignore[attr-defined]
                known.update(zip([str(h) for h in z["hash"]], z["vector"], strict=True))
    hashes = [text_hash(t) for t in texts]
    todo = sorted({h: t for h, t in zip(hashes, texts, strict=True) if h not in known}.items())
    if todo:
        vecs = embedder.encode_documents([t for _h, t in todo])  # type: ignore[attr-defined]
        known.update(zip([h for h, _t in todo], vecs, strict=True))
        CACHE.parent.mkdir(exist_ok=True)
        new = [h for h in known]
        np.savez(CACHE, model=embedder.name, hash=np.array(new), vector=np.vstack([known[h] for h in new]))  # type: ignore[attr-defined]
    return np.vstack([known[h] for h in hashes]).astype(np.float32), len(todo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5", help="Embedding model spec (default: e5).")
    parser.add_argument(
        "--variants", type=int, default=120, help="Transformed copies (besides the translations)."
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    projects = json.loads(DEMO.read_text(encoding="utf-8"))
    pool, truth, how, negatives = build(projects, args.variants, args.seed)
    embedder = load_embedder(args.model)
    start = time.perf_counter()
    texts = [project_text(p["name"], p["description"], p["industry"], p.get("track")) for p in pool]
    matrix, encoded = encode_cached(embedder, texts)
    encode_s = time.perf_counter() - start

    start = time.perf_counter()
    table = VectorTable(np.arange(len(pool), dtype=np.int64), matrix)
    cosines: dict[tuple[int, int], float] = {}
    for a, b, cos in table.neighbours(list(range(len(pool)))):
        cosines[(min(a, b), max(a, b))] = cos
    prints = {i: fingerprint(p["name"], p["description"]) for i, p in enumerate(pool)}
    flagged = judge_candidates(set(cosines), cosines, prints)
    detect_s = time.perf_counter() - start

    found = set(flagged)
    tp = found & truth
    fp = found & negatives
    print(
        f"labelled set: {len(pool)} projects, {len(truth)} duplicate "
        f"pairs, {len(negatives)} same-topic non-duplicate pairs"
    )
    print(
        f"model {embedder.name}: {encoded} texts encoded in {encode_s:.1f} s (others from the shipped demo"
        f" vectors or the cache); detection in {detect_s:.2f} s"
    )
    precision = len(tp) / max(1, len(tp) + len(fp))
    recall = len(tp) / len(truth)
    print(
        f"precision {precision:.3f}  recall {recall:.3f}  "
        f"(flagged {len(found)}: {len(tp)} true, {len(fp)} false,"
        f" {len(found) - len(tp) - len(fp)} unlabelled pairs of close-named demo projects)"
    )
    for label in ("reordered", "edited", "suffix changed", "translated"):
        pairs = [t for t in truth if how[t[1]] == label]
        hit = [t for t in pairs if t in found]
        same = [t for t in hit if flagged[t].kind == "same"]
        print(
            f"  {label:15s} recall {len(hit) / len(pairs):.3f} "
            f"({len(hit)}/{len(pairs)}), flagged as same {len(same)}"
        )
    missed = sorted(truth - found)
    for a, b in missed[:5]:
        print(f"  missed ({how[b]}): {pool[a]['name']} / {pool[b]['name']} cos={cosines.get((a, b))}")
    for a, b in sorted(fp)[:5]:
        v = flagged[(a, b)]
        print(
            f"  false: {pool[a]['name']} / {pool[b]['name']} score={v.score} emb={v.embedding} text={v.text}"
        )


if __name__ == "__main__":
    main()
