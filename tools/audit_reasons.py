"""Audit the reasons and scores of every institution's ranked list, as its own members see them.

Counts, over each institution's top 20 (with its signed connections as evidence): reasons that use
statistics words outside quotes, shared-keyword reasons that quote a stop-list word, a filler the issue
reported or a bare number, lists whose top shows 100, candidates flagged as competitors, and pairs whose
匹配度 differs between the institution's list and the project's list.

    .venv/bin/python tools/audit_reasons.py          # the configured database (MATCH_DATABASE_URL ...)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app
from app.services import get_matching
from matching.explain import GENERIC_TERMS, JARGON

FILLERS = ("提出", "为此", "第二", "数量", "缺口", "针对", "运行", "同比")


def main() -> None:
    app = create_app()
    with app.app_context():
        service = get_matching()
        counts = dict.fromkeys(
            (
                "lists",
                "reasons",
                "jargon",
                "keyword_reasons",
                "filler",
                "stop_list",
                "digits",
                "top_100",
                "competitors",
                "pairs",
                "same_score",
            ),
            0,
        )
        for inst_id in sorted(service.institution_ids()):
            matches = service.match_institution(inst_id, 20)
            if not matches:
                continue
            counts["lists"] += 1
            counts["top_100"] += matches[0].score >= 100.0
            side = service.institution(inst_id).side
            for rank, m in enumerate(matches):
                counts["competitors"] += m.competitor_of is not None
                if rank < 5:
                    other = {x.id: x.score for x in service.match_project(m.id, side, 500, explain=False)}
                    if inst_id in other:
                        counts["pairs"] += 1
                        counts["same_score"] += other[inst_id] == m.score
                for r in m.reasons:
                    counts["reasons"] += 1
                    plain = re.sub(r"「[^」]*」", "", r.text)
                    counts["jargon"] += any(word in plain for word in JARGON)
                    if r.feature == "bm25":
                        terms = re.findall(r"「([^」]*)」", r.text)
                        counts["keyword_reasons"] += 1
                        counts["filler"] += any(t in FILLERS for t in terms)
                        counts["stop_list"] += any(t.lower() in GENERIC_TERMS for t in terms)
                        counts["digits"] += any(re.fullmatch(r"[\d.,%]+", t) for t in terms)
        print(" ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
