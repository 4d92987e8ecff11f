"""Form helpers: turn a posted form into the dict the services validate."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

LIST_FIELDS = {"needs", "industries", "stages", "services"}


def form_data(form: MultiDict[str, str], fields: list[str]) -> dict[str, Any]:
    """Return the posted values of the given fields (lists for multi-selects)."""
    data: dict[str, Any] = {}
    for f in fields:
        if f in LIST_FIELDS:
            data[f] = [v for v in form.getlist(f) if v.strip()]
        else:
            data[f] = form.get(f, "")
    return data
