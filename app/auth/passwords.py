"""The password rule for every password an account sets: registration, 修改密码 and the secretariat's form.

The rule, as the forms state it (RULE_TEXT): at least PASSWORD_MIN_LENGTH characters (10 by default)
and at most 128; at least two of letters, digits and symbols; at least 5 different characters; not a
common password, nor a common password with digits or symbols added at the end; not containing the
user name. The demo accounts are created by `flask demo load` without this check (their passwords
are published in the README and are themselves on the common list, so nobody can choose them).
"""

from __future__ import annotations

import functools
import re
from importlib import resources

#: The longest password accepted (scrypt hashes any length, but a form field has to end somewhere).
MAX_LENGTH = 128

#: Different characters a password needs at least ("aaaaaaaaaa1" and "abababab12" are not passwords).
MIN_DISTINCT = 5

#: The default minimum length (PASSWORD_MIN_LENGTH in the configuration overrides it).
DEFAULT_MIN_LENGTH = 10

_TRAILING = re.compile(r"[\W\d_]+$")


def rule_text(min_length: int = DEFAULT_MIN_LENGTH) -> str:
    """Return the rule in words, for the forms (Chinese)."""
    return (
        f"至少 {min_length} 个字符，须包含字母、数字、符号中的至少两类，至少 {MIN_DISTINCT} 个不同字符；"
        "不能是常见密码（或常见密码后加数字、符号），不能包含用户名"
    )


@functools.cache
def common_passwords() -> frozenset[str]:
    """Return the shipped list of common passwords, lower-case."""
    text = resources.files("app.auth").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def is_common(password: str) -> bool:
    """Return True if the password, or what is left of it without trailing digits and symbols, is common."""
    lowered = password.lower()
    common = common_passwords()
    if lowered in common:
        return True
    stem = _TRAILING.sub("", lowered)
    return len(stem) >= 4 and stem in common


def _classes(password: str) -> int:
    letters = any(ch.isalpha() for ch in password)
    digits = any(ch.isdigit() for ch in password)
    symbols = any(not ch.isalnum() for ch in password)
    return letters + digits + symbols


def problem(
    password: str, username: str | None, label: str = "密码", min_length: int = DEFAULT_MIN_LENGTH
) -> str | None:
    """Return why the password is refused (a Chinese message naming the rule), or None if it is fine.

    Args:
        password: the password as typed.
        username: the account's user name (a password may not contain it), or None when unknown.
        label: the field's name in the message ("密码", "新密码", "初始密码").
        min_length: the configured minimum length.
    """
    if len(password) < min_length or len(password) > MAX_LENGTH:
        return f"{label}：长度应为 {min_length} 到 {MAX_LENGTH} 个字符"
    if is_common(password):
        return f"{label}：这是常见密码（或常见密码加数字、符号），很容易被猜中，请换一个"
    name = (username or "").strip().lower()
    if len(name) >= 3 and name in password.lower():
        return f"{label}：不能包含用户名"
    if _classes(password) < 2:
        return f"{label}：须包含字母、数字、符号中的至少两类"
    if len(set(password.lower())) < MIN_DISTINCT:
        return f"{label}：重复字符太多，至少需要 {MIN_DISTINCT} 个不同字符"
    return None
