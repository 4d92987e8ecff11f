"""Check an uploaded file before anything reads it: extension, declared type, real content, size."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from app.schemas import InputError

#: The first bytes each accepted kind of file starts with (the declared name and type can lie).
MAGIC: dict[str, tuple[bytes, ...]] = {
    "xlsx": (b"PK\x03\x04",),
    "docx": (b"PK\x03\x04",),
    "pptx": (b"PK\x03\x04",),
    "zip": (b"PK\x03\x04",),
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
}
#: Text formats have no magic number: they must decode (UTF-8, or GBK as Excel on Chinese Windows saves
#: CSV) and hold no NUL byte.
TEXT_KINDS = frozenset({"csv", "txt", "json"})


def check_upload(
    file: Any, allowed_ext: Iterable[str], max_bytes: int, field: str = "file", label: str = "文件"
) -> bytes:
    """Return the bytes of an uploaded file after checking its extension, content and size.

    Args:
        file: a werkzeug FileStorage (request.files[...]) or None.
        allowed_ext: accepted extensions without the dot, e.g. ("xlsx", "csv").
        max_bytes: the largest accepted size.
        field: the form field, named in the error.
        label: the field's Chinese name, for the message.

    Raises:
        InputError: naming the field, in Chinese, when anything is wrong.
    """
    allowed = {e.lower().lstrip(".") for e in allowed_ext}
    name = getattr(file, "filename", None) or ""
    if file is None or not name:
        raise InputError({field: f"{label}：请选择要上传的文件"})
    ext = os.path.splitext(name)[1].lower().lstrip(".")
    if ext not in allowed:
        raise InputError({field: f"{label}：只接受 {'、'.join(sorted(allowed))} 格式"})
    data = file.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError({field: f"{label}：文件过大，最大 {_size(max_bytes)}"})
    if not data:
        raise InputError({field: f"{label}：文件是空的"})
    if ext in TEXT_KINDS:
        if b"\x00" in data:
            raise InputError({field: f"{label}：不是文本文件"})
        if not _decodes(data):
            raise InputError({field: f"{label}：文本应为 UTF-8 或 GBK 编码"})
    elif not any(data.startswith(m) for m in MAGIC.get(ext, (b"",))):
        raise InputError({field: f"{label}：文件内容与扩展名 .{ext} 不符"})
    return data


def _decodes(data: bytes) -> bool:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return True
    return False


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:g} MB"
    return f"{n / 1024:g} KB"
