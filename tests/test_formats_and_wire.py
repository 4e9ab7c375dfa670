"""The parsing format table and the sandbox's result codec: pure functions, no process, no database."""

from __future__ import annotations

import pytest

from apps.ingestion.parsing import formats, messages
from apps.ingestion.sandbox_wire import ChildRaised, SandboxError, capture, decode, encode, encode_refusal, unwrap


def test_every_format_has_a_parser_and_binary_ones_a_damage_label():
    for ext, fmt in formats.FORMATS.items():
        assert fmt.ext == ext and ext.startswith(".") and "/" in fmt.mime and callable(fmt.parser)
        if fmt.binary:
            assert fmt.label and fmt.advice, ext
    assert formats.SUPPORTED_EXTENSIONS == {ext: f.mime for ext, f in formats.FORMATS.items()}
    assert formats.IMAGE_EXTENSIONS == {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
    assert formats.OFFICE_ZIP_EXTENSIONS == {".docx", ".pptx", ".xlsx", ".odt"}
    assert formats.BINARY_EXTENSIONS == {".pdf", ".docx", ".pptx", ".xlsx", ".odt", ".msg", ".zip",
                                         *formats.IMAGE_EXTENSIONS}
    assert not formats.LEGACY_OFFICE_EXTENSIONS & formats.SUPPORTED_EXTENSIONS.keys()


def test_a_damaged_file_is_named_by_its_format():
    xlsx = formats.format_for(".xlsx")
    assert "as an Excel .xlsx workbook" in str(messages.damaged("q3.xlsx", xlsx.label, xlsx.advice))
    assert "as text" in str(messages.damaged("notes.txt"))
    with pytest.raises(KeyError):
        formats.format_for(".doc")


def _fails(kind: str):
    raise ValueError(f"bad {kind}\x1b")


def test_the_codec_returns_the_value_or_raises():
    assert decode(encode(sum, [1, 2]), memory_bytes=1 << 20) == 3
    with pytest.raises(ChildRaised) as info:
        decode(encode(_fails, "input"), memory_bytes=1 << 20)
    assert info.value.type_name == "ValueError" and info.value.message == "bad input " and "_fails" in info.value.traceback
    with pytest.raises(SandboxError, match="was refused: no landlock") as refused:
        decode(encode_refusal("no landlock"), memory_bytes=1 << 20)
    assert refused.value.code == "isolation"
    with pytest.raises(SandboxError, match="more than 1 MiB") as memory:
        decode(b'{"ok": false, "kind": "memory", "message": "MemoryError"}', memory_bytes=1 << 20)
    assert memory.value.code == "memory"
    for garbled in (b"not json", b"[1, 2]", b'{"value": 3}'):
        with pytest.raises(SandboxError) as info:
            decode(garbled, memory_bytes=1 << 20)
        assert info.value.code == "crashed"


def test_a_captured_memory_error_fails_the_whole_child():
    def hog():
        raise MemoryError

    with pytest.raises(MemoryError):
        capture(hog)
    assert unwrap(capture(len, "abc")) == 3
