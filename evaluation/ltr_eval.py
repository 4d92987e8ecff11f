"""LambdaMART on the shared evaluation sets: choose on history, score dev_test, ablate feature groups.

Per set, with the same code and settings everywhere:

1. the history (edges_history.csv only) becomes an :class:`~matching.ltr_features.InvestmentLog`,
   joined by the institutions' deals outside the set from the market's event feed where there is
   one (``EvalSet.outside``, marked ``outside`` in the log: part of an institution's state, never a
   query or a target); the project texts become unit e5 vectors, a character TF-IDF matrix and
   category one-hots;
2. :func:`matching.ltr.select_model` picks LambdaMART's hyper-parameters and prior (recent
   activity or stage-aware popularity), or a single-feature ranker if that validates better, on
   the newest 15 % of history, plus the 15 % slices before it
   while the slices so far hold fewer than 150 target projects, once over every validation project and
   once per segment (cold: a project with no investor yet; warm: one with earlier investors) where the
   slices hold at least 40 of the segment's projects (a LambdaMART is chosen over the best
   single-feature ranker only when it leads by more than one standard error; a segment chooses
   between the LambdaMART that validates best overall and the single rankers, and keeps the overall
   choice unless its own leads that by more than one standard error); a training set below
   ``LTRSettings.bag_below_rows`` rows is fit as a bag of three differently seeded models whose
   scores are averaged (the small sets' choice otherwise moves with the seed);
3. :func:`matching.ltr.fit_final` refits the choice on windows ending at the end of history, once
   with every feature group and once without each group (the ablations);
4. every dev_test project is ranked, by its segment's choice, against every institution active in
   history, scored with the
   shared ``eval_ranking.py`` next to the shared ``baselines.py``, and the difference to the best
   baseline gets a paired bootstrap 95 % interval (the shared script's own bootstrap).

dev_test edges are read only to score, after every choice has been made.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from embeddings import Embedder
from evaluation.benchmark import (
    EvalSet,
    _categories,
    _read,
    run_baselines,
    set_vectors,
    stated_stage_counts,
)
from matching.features import FEATURES, round_stage_index
from matching.ltr import (
    SEGMENTS,
    ColumnScorer,
    LTRSettings,
    fit_final,
    query_segments,
    rank_queries,
    select_model,
    training_set,
)
from matching.ltr_features import (
    EXTRA_GROUP,
    InvestmentLog,
    ProjectContent,
    StatedProfiles,
    day_number,
)
from matching.types import STAGES

__all__ = ["evaluate_set", "format_report", "jittered", "load_eval_module", "set_inputs"]

TOP_N = 100
METRICS = (("ndcg", "ndcg@10"), ("recall", "recall@10"))


def load_eval_module(bench: Path) -> ModuleType:
    """Import the shared ``eval_ranking.py`` (the reference metric and bootstrap) from ``bench``."""
    spec = importlib.util.spec_from_file_location("shared_eval_ranking", bench / "eval_ranking.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(bench / "eval_ranking.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ServiceFeatures:
    """Today's service feature vector as an extra LTR group: LambdaMART next to today's candidates.

    For a day, a :class:`~matching.service.MatchingService` is built from the history edges dated
    before it (profiles, portfolios, co-investment: :func:`evaluation.benchmark.build_service`) and
    asked for each query's feature rows against the candidates, exactly as it ranks them.
    """

    def __init__(self, data: EvalSet, embedder: Embedder, pvecs: Mapping[int, Any], ivecs: Mapping[int, Any]):
        self.data, self.embedder, self.pvecs, self.ivecs = data, embedder, pvecs, ivecs
        self._day: int | None = None
        self._service: Any = None
        # dense index n of the sorted ids <-> the service's integer ids (also the sorted order, from 1)
        self.pids = sorted(data.projects)
        self.iids = sorted(data.institutions)

    def __call__(
        self, as_of: int, queries: NDArray[np.int64], insts: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        from evaluation.benchmark import Encoded, build_service

        if self._day != as_of:
            iso = str(np.datetime64(int(as_of), "D"))
            visible = [e for e in self.data.history if e.date and e.date < iso]
            self._service = build_service(Encoded(self.data, self.embedder, self.pvecs, self.ivecs), visible)
            self._day = as_of
        inst_ids = [self.data.inst_int[self.iids[i]] for i in insts]
        out = np.empty((len(queries), len(insts), len(FEATURES)), dtype=np.float32)
        for r, q in enumerate(queries):
            pid = self.data.project_int[self.pids[int(q)]]
            out[r] = self._service.features_for_project(pid, inst_ids, leave_out=False)
        return out


#: Standard deviation of the ``jitter`` noise: about the float32 rounding by which the same model's
#: vectors differ from one machine to another.
JITTER_SD = 1e-6


def jittered(vectors: Mapping[int, Any], seed: int) -> dict[int, NDArray[np.float32]]:
    """Return the vectors plus seeded Gaussian noise of sd :data:`JITTER_SD` (keys in sorted order)."""
    rng = np.random.default_rng(seed)
    return {
        k: (np.asarray(v, dtype=np.float64) + rng.normal(0.0, JITTER_SD, len(v))).astype(np.float32)
        for k, v in sorted(vectors.items())
    }


def set_inputs(
    data: EvalSet,
    embedder: Embedder | None,
    cache_dir: Path,
    service_features: bool = False,
    jitter: int | None = None,
) -> tuple[InvestmentLog, ProjectContent, list[str], list[str], int]:
    """Return (log, content, project ids, institution ids, first day after history) of a set.

    Dense indexes follow the sorted string ids. Vectors are the service's e5 document vectors
    (cached); without an embedder the vectors are zeros and the text groups fall back to TF-IDF.
    ``jitter`` (a seed) adds float-rounding-sized noise to every vector: a choice and figures that
    move with it hang on the last bits of the vectors, which differ between machines.
    """
    # The feed's companies come after the set's own: no text, no category, never a query.
    pids = sorted(data.projects) + sorted({e.project for e in data.outside})
    iids = sorted(data.institutions)
    p_at = {p: n for n, p in enumerate(pids)}
    i_at = {i: n for n, i in enumerate(iids)}
    own = [e for e in data.history if e.date]
    edges = own + [e for e in data.outside if e.date]
    log = InvestmentLog.build(
        len(iids),
        len(pids),
        [i_at[e.institution] for e in edges],
        [p_at[e.project] for e in edges],
        [day_number(e.date) or 0 for e in edges],
        [(-1 if (s := round_stage_index(e.round)) is None else s) for e in edges],
        [n >= len(own) for n in range(len(edges))],
    )
    dim = 0
    vectors = np.zeros((len(pids), 1), dtype=np.float32)
    extra: ServiceFeatures | None = None
    ivecs: Mapping[int, Any] = {}
    if embedder is not None:
        pvecs, ivecs = set_vectors(data, embedder, cache_dir)
        if jitter is not None:
            pvecs, ivecs = jittered(pvecs, jitter), jittered(ivecs, jitter + 1)
        if service_features:
            extra = ServiceFeatures(data, embedder, pvecs, ivecs)
        if pvecs:
            dim = len(next(iter(pvecs.values())))
            vectors = np.zeros((len(pids), dim), dtype=np.float32)
            for pid, n in p_at.items():
                v = pvecs.get(data.project_int.get(pid, 0))
                if v is not None:
                    vectors[n] = v / max(float(np.linalg.norm(v)), 1e-12)
    records = [data.projects.get(p, {}) for p in pids]  # a feed company has no record
    texts = [" ".join(x for x in (r.get("description") or "", r.get("category") or "") if x) for r in records]
    if any(t.strip() for t in texts):
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=True, min_df=2)
        try:
            tfidf = normalize(vec.fit_transform(texts)).tocsr()
        except ValueError:  # every n-gram below min_df
            tfidf = sp.csr_matrix((len(pids), 1))
    else:
        tfidf = sp.csr_matrix((len(pids), 1))
    cats = [[c.lower() for c in _categories(r.get("category"))] for r in records]
    vocab = {c: n for n, c in enumerate(sorted({c for cs in cats for c in cs}))}
    rows = [r for r, cs in enumerate(cats) for _ in cs]
    cols = [vocab[c] for cs in cats for c in cs]
    categories = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(pids), max(len(vocab), 1)))
    categories.data[:] = 1.0
    founded = np.asarray(
        [int(y[:4]) if (y := (r.get("founded_year") or "").strip())[:4].isdigit() else -1 for r in records],
        dtype=np.int64,
    )
    end = int(log.day[log.own].max()) + 1 if log.own.any() else 0
    stated = stated_profiles(data, iids, ivecs, vectors.shape[1])
    content = ProjectContent(
        vectors,
        tfidf,
        categories.tocsr(),
        founded,
        extra=extra,
        extra_names=tuple(f"svc_{f}" for f in FEATURES) if extra is not None else (),
        stated=stated,
    )
    return log, content, pids, iids, end


def stated_profiles(
    data: EvalSet, iids: Sequence[str], ivecs: Mapping[int, Any], dim: int
) -> StatedProfiles | None:
    """Return the institutions' registered profiles (row n = iids[n]), None when no one has one.

    Stated deal counts per stage come from ``profile_rounds`` ("A轮426家、B轮216家"), the description
    vector from the institution's text (only where it has a ``profile_description``).
    """
    counts = np.zeros((len(iids), len(STAGES)))
    described = np.zeros((len(iids), dim), dtype=np.float32)
    for n, iid in enumerate(iids):
        row = data.institutions[iid]
        for stage, k in stated_stage_counts(row).items():
            counts[n, stage] = k
        v = ivecs.get(data.inst_int[iid])
        if v is not None and (row.get("profile_description") or "").strip() and len(v) == dim:
            described[n] = v / max(float(np.linalg.norm(v)), 1e-12)
    if not counts.any() and not described.any():
        return None
    return StatedProfiles(counts, described)


def _write(path: Path, ranked: Mapping[str, Sequence[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for qid in sorted(ranked):
            f.write(json.dumps({"project_id": qid, "ranked_institution_ids": list(ranked[qid])}) + "\n")


def evaluate_set(
    data: EvalSet,
    data_dir: Path,
    bench: Path,
    out_dir: Path,
    embedder: Embedder | None,
    cache_dir: Path,
    settings: LTRSettings | None = None,
    service_features: bool = False,
    jitter: int | None = None,
) -> dict[str, Any]:
    """Choose, fit, rank dev_test, score against the baselines; return the set's results."""
    settings = settings or LTRSettings()
    t0 = time.perf_counter()
    ev = load_eval_module(bench)
    log, content, pids, iids, end = set_inputs(data, embedder, cache_dir, service_features, jitter)
    t_inputs = time.perf_counter() - t0
    selection = select_model(log, content, end, settings)
    t_select = time.perf_counter() - t0 - t_inputs
    # dev_test is read from here on, to name the query projects and to score.
    test = data_dir / "edges_dev_test.csv"
    query_ids = sorted({r["project_id"] for r in _read(test)})
    p_at = {p: n for n, p in enumerate(pids)}
    queries = [p_at[q] for q in query_ids if q in p_at]
    drops: list[str | None] = [None, *content.groups]
    if content.extra is not None:
        drops.append(EXTRA_GROUP)
    # The learned model: the choice, or the best LambdaMART on the same slices when a single scorer won.
    params, iterations = selection.best_lambdamart or (
        {"num_leaves": 7, "min_child_samples": 20, "learning_rate": 0.05},
        200,
    )
    if selection.kind == "lambdamart" and selection.iterations:
        params, iterations = selection.params, selection.iterations
    train = training_set(log, content, end, settings)
    models, _ = fit_final(log, content, end, params, iterations, settings, drops, train)
    scorers: dict[str, Any] = {"lambdamart" if d is None else f"-{d}": m for d, m in models.items()}
    # Each query is ranked by its segment's choice (cold: no earlier investor; warm: some).
    segment_of = dict(zip(queries, query_segments(log, queries, end), strict=True))
    route: dict[str, str] = {}
    for segment in SEGMENTS:
        chosen = selection.for_segment(segment)
        if chosen.kind == "single" and chosen.feature:
            name = f"single({chosen.feature})"
            scorers.setdefault(name, ColumnScorer(chosen.feature))
        elif (dict(chosen.params), chosen.iterations) == (dict(params), iterations):
            name = "lambdamart"
        else:
            name = f"lambdamart:{segment}"
            refit, _ = fit_final(
                log, content, end, chosen.params, chosen.iterations or 1, settings, (None,), train
            )
            scorers[name] = refit[None]
        route[segment] = name
    ranked = rank_queries(log, content, end, queries, scorers, TOP_N, settings.chunk)
    ranked["chosen"] = {q: ranked[route[segment_of[q]]][q] for q in queries}
    chosen_name = "lambdamart" if set(route.values()) == {"lambdamart"} else "chosen"
    preds: dict[str, Path] = {}
    for name, lists in ranked.items():
        path = out_dir / "ltr" / f"{name}.jsonl"
        _write(path, {pids[q]: [iids[i] for i in lst] for q, lst in lists.items()})
        preds[name] = path
    baselines = run_baselines(bench, data_dir, test, out_dir / "baselines")
    rel_all = ev.load_test(str(test), "all")
    per = {name: ev.per_project(rel_all, ev.load_pred(str(p))) for name, p in {**preds, **baselines}.items()}
    table: dict[str, dict[str, dict[str, float]]] = {}
    rows = {"ours": preds[chosen_name]}
    if chosen_name != "lambdamart":  # a single scorer won on history: the learned model is listed too
        rows["lambdamart"] = preds["lambdamart"]
    for name, path in {**rows, **baselines}.items():
        table[name] = {}
        for subset in ("all", "cold", "warm"):
            rel = ev.load_test(str(test), subset)
            if rel:
                table[name][subset] = ev.score(rel, ev.load_pred(str(path)))
    versus: dict[str, Any] = {}
    versus_lambdamart: dict[str, Any] = {}
    for key, metric in METRICS:
        best = max(baselines, key=lambda b: (float(np.mean(per[b][key])), b))
        for out, name in ((versus, chosen_name), (versus_lambdamart, "lambdamart")):
            mean, lo, hi = ev.paired_bootstrap(per[name][key], per[best][key])
            out[metric] = {"baseline": best, "diff": mean, "ci95": [lo, hi]}
    full = per["lambdamart"]
    ablations: dict[str, Any] = {}
    for group in [g for g in drops if g is not None]:
        other = per[f"-{group}"]
        row = {}
        for key, metric in METRICS:
            # What the group adds: the full model minus the model retrained without it.
            mean, lo, hi = ev.paired_bootstrap(full[key], other[key])
            row[metric] = {"without": float(np.mean(other[key])), "adds": mean, "ci95": [lo, hi]}
        ablations[group] = row
    labels = {seg: scorers[name].label() for seg, name in route.items()}
    return {
        "set": data.name,
        "model": next(iter(labels.values()))
        if len(set(labels.values())) == 1
        else "; ".join(f"{seg}: {label}" for seg, label in labels.items()),
        "segments": {
            seg: {"model": labels[seg], "validation_queries": selection.for_segment(seg).n_validation_queries}
            for seg in route
        },
        "lambdamart": models[None].label(),
        "chosen_feature": selection.feature,
        "validation_ndcg10": selection.validation,
        "validation_queries": selection.n_validation_queries,
        "training": {
            "rows": int(train.X.shape[0]),
            "queries": train.n_queries,
            "positives": int(train.y.sum()),
            "windows": [[str(np.datetime64(a, "D")), str(np.datetime64(b, "D"))] for a, b in train.windows],
        },
        "importances": models[None].importances(),
        "table": table,
        "versus_best_baseline": versus,
        "lambdamart_versus_best_baseline": versus_lambdamart,
        "lambdamart_all": {m: float(np.mean(full[k])) for k, m in METRICS},
        "ablations": ablations,
        "seconds": {
            "inputs": round(t_inputs, 1),
            "select": round(t_select, 1),
            "total": round(time.perf_counter() - t0, 1),
        },
    }


def format_report(results: Mapping[str, Any]) -> str:
    """Return the dev_test tables, the intervals and the ablations as text."""
    lines: list[str] = []
    for name, res in results.items():
        lines.append(
            f"\n== {name}: chosen on the newest history slices ({res['validation_queries']} projects): {res['model']} ({res['seconds']['total']}s)"
        )
        lines.append(f"{'method':<14} {'NDCG@10':>8} {'R@10':>7}   cold N/R        warm N/R")
        for method, subsets in res["table"].items():
            a = subsets.get("all", {})
            c = subsets.get("cold")
            w = subsets.get("warm")
            cell = lambda m: f"{m['ndcg@10']:.3f}/{m['recall@10']:.3f}" if m else "   –       "  # noqa: E731
            label = {"ours": "ours (chosen)" if "lambdamart" in res["table"] else "ours (LTR)"}.get(
                method, method
            )
            lines.append(
                f"{label:<14} {a.get('ndcg@10', 0):8.3f} {a.get('recall@10', 0):7.3f}   "
                f"{cell(c):<15} {cell(w)}"
            )
        compared = [("ours", res["versus_best_baseline"])]
        if "lambdamart" in res["table"]:
            compared.append(("lambdamart", res.get("lambdamart_versus_best_baseline", {})))
        for who, versus in compared:
            for metric, v in versus.items():
                lo, hi = v["ci95"]
                verdict = "excludes 0" if lo > 0 or hi < 0 else "includes 0"
                lines.append(
                    f"{who} − {v['baseline']} {metric}: {v['diff']:+.4f}  95% [{lo:+.4f}, {hi:+.4f}] ({verdict})"
                )
        lines.append(
            f"ablations ({res.get('lambdamart', 'LambdaMART')} with all groups minus retrained without "
            "the group; + = the group helps):"
        )
        for group, row in res["ablations"].items():
            n, r = row["ndcg@10"], row["recall@10"]
            lines.append(
                f"  {group:<14} NDCG {n['adds']:+.4f} [{n['ci95'][0]:+.4f}, {n['ci95'][1]:+.4f}]"
                f"  R@10 {r['adds']:+.4f} [{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]"
            )
    return "\n".join(lines)
