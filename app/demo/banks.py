"""The demo's text banks: sentence templates, invented name characters, places, quotas.

Read from data/banks.json by the offline demo generator (tools/generate_demo.py) and by
``flask demo synthetic``; the contest's vocabularies themselves live in models.enums.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BANKS_FILE = Path(__file__).parent / "data" / "banks.json"
BANKS: dict[str, Any] = json.loads(BANKS_FILE.read_text(encoding="utf-8"))
