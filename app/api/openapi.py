"""The OpenAPI 3.1 description of the JSON API, built from the pydantic schemas and the route list."""

from __future__ import annotations

from typing import Any

from flask import Flask


def build_openapi(app: Flask) -> dict[str, Any]:
    """Return the OpenAPI document of every /api route."""
    paths: dict[str, Any] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = {"operationId": f"{rule.endpoint}.{method.lower()}"}
    return {"openapi": "3.1.0", "info": {"title": "创客中国 对接服务 API", "version": "1"}, "paths": paths}
