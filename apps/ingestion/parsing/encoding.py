"""Whether a file is text, and in which encoding: UTF-8 (with or without BOM), UTF-16 with a
BOM, or Windows-1252 for legacy Western files. Used by the type check and the text parsers."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

TEXT_READ_LIMIT = 64 * 1024 * 1024  # text files larger than this are refused
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0e-\x1f]")  # C0 controls except \t \n \v \f \r


def decode_text(path: Path) -> tuple[str, str] | None:
    """(text, encoding) if the file is reasonably text, else None.

    UTF-8 (with or without BOM) first, UTF-16 only with a BOM, then Windows-1252 for legacy
    Western files; NUL bytes or more than 0.5 % control characters mean binary.
    """
    if path.stat().st_size > TEXT_READ_LIMIT:
        return None
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in data:
        return None
    else:
        candidates = ["utf-8-sig", "cp1252"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if len(_CONTROL_CHARS_RE.findall(text)) > max(2, len(text) // 200):
            return None
        return text, encoding
    return None


def text_encoding(path: Path) -> str:
    decoded = decode_text(path)
    return decoded[1] if decoded else "utf-8"
