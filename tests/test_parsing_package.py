"""The parsing package: its public names, the XML check over whole parts, both file-type
backends, and the module size the package was split for. Plain functions, no database."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import pytest

from apps.ingestion import parsing
from apps.ingestion.parsing import ParseError, detect_file_type, filetypes, parse_and_chunk
from tests import files

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "apps" / "ingestion" / "parsing"


def _names_imported_from_parsing() -> set[str]:
    """Every name imported from, or read as an attribute of, apps.ingestion.parsing anywhere
    in apps/, tests/ and bench/ (outside the package itself)."""
    names: set[str] = set()
    for root in ("apps", "tests", "bench"):
        for path in (PROJECT / root).rglob("*.py"):
            if PACKAGE in path.parents:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "apps.ingestion.parsing":
                    names |= {alias.name for alias in node.names}
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "parsing":
                    names.add(node.attr)
    return names


def test_every_public_name_in_use_still_imports():
    used = _names_imported_from_parsing()
    assert {"parse_and_chunk", "detect_file_type", "ParseError", "check_zip_safe", "SUPPORTED_EXTENSIONS"} <= used
    missing = sorted(name for name in used if not hasattr(parsing, name))
    assert missing == []


def test_no_module_of_the_package_is_over_300_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert len(sizes) >= 8 and max(sizes.values()) <= 300, sizes


def _docx_with_part(name: str, data: bytes) -> bytes:
    base = zipfile.ZipFile(io.BytesIO(files.docx_with_table()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in base.infolist():
            zf.writestr(info.filename, data if info.filename == name else base.read(info.filename))
    return buf.getvalue()


XXE_BODY = (
    '<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>&xxe;</w:t></w:r></w:p></w:body></w:document>"
)


@pytest.mark.parametrize(
    "document_xml",
    [
        # UTF-16: the bytes "<!DOCTYPE" never appear, so a byte regex cannot see them.
        ('<?xml version="1.0" encoding="UTF-16" standalone="yes"?>\n' + XXE_BODY).encode("utf-16"),
        # 16 KiB of comment before the DOCTYPE: past an 8 KiB prefix.
        ('<?xml version="1.0" encoding="UTF-8"?>\n<!--' + " " * 16384 + "-->\n" + XXE_BODY).encode(),
        # Padding with whitespace and processing instructions.
        ('<?xml version="1.0" encoding="UTF-8"?>' + "\n" * 9000 + "<?pad x?>" * 200 + XXE_BODY).encode(),
    ],
    ids=["utf-16", "padded-comment", "padded-whitespace"],
)
def test_hidden_doctype_in_an_office_part_is_refused(tmp_path, document_xml):
    path = tmp_path / "stored"
    path.write_bytes(_docx_with_part("word/document.xml", document_xml))
    with pytest.raises(ParseError, match="DOCTYPE") as info:
        parse_and_chunk(path, "hidden.docx")
    assert info.value.code == "hostile"


def test_entity_declaration_in_a_relationships_part_is_refused(tmp_path):
    rels = (b'<?xml version="1.0" encoding="UTF-8"?>' + b" " * 10000
            + b'<!DOCTYPE r [<!ENTITY e "x">]><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>')
    path = tmp_path / "stored"
    path.write_bytes(_docx_with_part("_rels/.rels", rels))
    with pytest.raises(ParseError, match="DOCTYPE") as info:
        parse_and_chunk(path, "rels.docx")
    assert info.value.code == "hostile"


def test_genuine_office_documents_pass_the_xml_check(tmp_path):
    for name, build in [("t.docx", files.docx_with_table), ("d.pptx", files.pptx), ("b.xlsx", files.xlsx), ("a.odt", files.odt)]:
        path = tmp_path / name
        path.write_bytes(build())
        assert parse_and_chunk(path, name), name


KINDS = [
    ("s.pdf", files.text_pdf, ".pdf"),
    ("s.docx", files.docx_with_table, ".docx"),
    ("s.pptx", files.pptx, ".pptx"),
    ("s.xlsx", files.xlsx, ".xlsx"),
    ("s.odt", files.odt, ".odt"),
    ("s.rtf", files.rtf, ".rtf"),
    ("s.png", files.png_scan, ".png"),
    ("s.eml", files.eml, ".eml"),
    ("s.csv", files.csv, ".csv"),
    ("bundle.zip", files.zip_of_documents, ".zip"),
    ("fax.pdf", files.fax_scan_pdf, ".pdf"),
]


@pytest.mark.parametrize("backend", ["libmagic", "filetype"])
def test_both_type_backends_decide_the_same(tmp_path, monkeypatch, backend):
    """libmagic when its shared library is there, the pure-Python filetype package when not:
    the same decisions either way (and without the declared extension)."""
    if backend == "libmagic" and filetypes.magic_backend() != "libmagic":
        pytest.skip("libmagic1 is not installed")
    monkeypatch.setattr(filetypes, "magic_backend", lambda: backend)
    for name, build, expected in KINDS:
        path = tmp_path / name
        path.write_bytes(build())
        assert detect_file_type(path, name) == expected, (backend, name)
        if expected not in {".csv", ".eml"}:  # text flavours need their name
            assert detect_file_type(path, "upload") == expected, (backend, name)
    from tests.msgfile import build_msg

    msg = tmp_path / "m.msg"
    msg.write_bytes(build_msg("Rota", "The rota changes on Monday.", "Ward Office", "ward@hospital.example", "staff@hospital.example"))
    assert detect_file_type(msg, "upload") == ".msg"
