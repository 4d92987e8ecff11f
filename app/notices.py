"""Tell users when rankings are lexical-only: a banner on pages, a flag in the API's JSON."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, request

#: The banner text while the semantic indexes are rebuilt (shown on every page).
LEXICAL_ONLY_NOTICE = "语义索引正在重建，当前排序仅基于关键词，结果可能不如平时准确；重建完成后自动恢复。"


def ranking_degraded() -> str | None:
    """Return "lexical_only" when this request ranked (or would rank) without the dense indexes."""
    flagged = g.get("ranking_degraded")
    if flagged:
        return str(flagged)
    service = current_app.extensions.get("matching")
    return getattr(service, "degraded", None) if service is not None else None


def init_app(app: Flask) -> None:
    """Register the template variable and the JSON flag."""

    @app.context_processor
    def _ranking_notice() -> dict[str, Any]:
        return {"ranking_notice": LEXICAL_ONLY_NOTICE if ranking_degraded() else None}

    @app.after_request
    def _flag_degraded_json(response: Response) -> Response:
        # Only responses that ranked: get_matching() sets g.ranking_degraded when it served lexical-only.
        flagged = g.get("ranking_degraded")
        if not flagged or not request.path.startswith("/api/") or not response.is_json:
            return response
        body = response.get_json(silent=True)
        if isinstance(body, dict) and "error" not in body:
            body["degraded"] = flagged
            response.set_data(app.json.dumps(body))
        return response
