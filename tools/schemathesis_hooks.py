"""Teach schemathesis the string formats the API document uses beyond JSON Schema's own.

The credit code's format (app.schemas.CREDIT_CODE_FORMAT) has a check character no pattern states: valid
codes are drawn here. The fuzz test imports this module; for the command line, set
SCHEMATHESIS_HOOKS=tools.schemathesis_hooks (with the repository on PYTHONPATH).
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from app.intake.eligibility import CODE_CHARS, check_character
from app.schemas import CREDIT_CODE_FORMAT

#: A unified social credit code with its right check character.
credit_codes = st.text(alphabet=CODE_CHARS, min_size=17, max_size=17).map(lambda s: s + check_character(s))

schemathesis.openapi.format(CREDIT_CODE_FORMAT, credit_codes)
