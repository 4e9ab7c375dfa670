"""A text PDF's headings come from its fonts (apps.ingestion.parsing.pdf_elements), not
from unstructured's spaCy guess; a PDF whose fonts mark nothing keeps the guess, and a
scanned page is still OCR'd. Plain functions, no database.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from apps.ingestion import parsing
from apps.ingestion.parsing import parse_and_chunk
from apps.ingestion.parsing.pdf import parse_pdf
from apps.ingestion.parsing.tuning import DEFAULTS, applied
from tests import files

PROJECT = Path(__file__).resolve().parents[1]

# A title (18 pt bold), headings (13 pt bold) whose words read as a sentence (a verb: the
# spaCy guess calls them narrative text) and paragraphs (11 pt).
HEADED = [[
    ("title", "Archive Handbook"),
    ("para", "This handbook says how the archive keeps its records and who may read them."),
    ("heading", "Records are kept for eight years"),
    ("para", "Every record stays in the archive for eight years after the case is closed."),
    ("heading", "Visitors sign the register"),
    ("para", "A visitor signs the register at the desk and wears a badge inside the archive."),
]]


@pytest.fixture
def no_spacy(monkeypatch):
    """Any use of spaCy (the text-type guess) fails the test."""
    parsing.ensure_offline_nlp()
    from unstructured.nlp import tokenize

    def refuse(*args, **kwargs):
        raise AssertionError("spaCy was asked to classify a PDF's text")

    monkeypatch.setattr(tokenize, "_get_nlp", refuse)


def build_pdf(pages) -> bytes:
    """sample_corpus/make_binary_samples.py's writer: Helvetica-Bold 18 pt titles, 13 pt
    headings, Helvetica 11 pt paragraphs."""
    sys.path.insert(0, str(PROJECT / "sample_corpus"))
    try:
        from make_binary_samples import build_pdf as write
    finally:
        sys.path.remove(str(PROJECT / "sample_corpus"))
    return write(pages)


def _write(tmp_path, data: bytes, name: str = "handbook.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_headings_set_in_larger_bold_type_become_titles_and_section_titles(tmp_path, no_spacy):
    path = _write(tmp_path, build_pdf(HEADED))
    elements = parse_pdf(path, path.name)
    titles = [(el.text, el.metadata.category_depth) for el in elements if el.category == "Title"]
    assert titles == [("Archive Handbook", 0), ("Records are kept for eight years", 1), ("Visitors sign the register", 1)]
    assert {el.category for el in elements if el.category != "Title"} == {"NarrativeText"}
    chunks = parse_and_chunk(path, path.name)
    section = {c.text.split("\n\n")[-1]: c.section_title for c in chunks}
    assert section["Every record stays in the archive for eight years after the case is closed."] == \
        "Records are kept for eight years"
    assert section["A visitor signs the register at the desk and wears a badge inside the archive."] == \
        "Visitors sign the register"


def test_the_same_headings_guessed_from_words_are_lost(tmp_path):
    """What the fonts fix: unstructured's guess (pdfminer, its own fast strategy) reads the
    two headings with a verb as narrative text, so their paragraphs get no section title."""
    path = _write(tmp_path, build_pdf(HEADED))
    with applied(replace(DEFAULTS, pdf_text_engine="pdfminer")):
        titles = [el.text for el in parse_pdf(path, path.name) if el.category == "Title"]
    assert titles == ["Archive Handbook"]


def test_a_pdf_whose_fonts_mark_nothing_keeps_unstructureds_guess(tmp_path):
    """One font and size throughout: the fonts say nothing, so every box is classified from
    its words by element_from_text, as before, and both engines agree."""
    plain = [[("para", "Records"), ("para", "Every record stays in the archive for eight years after the case is closed.")]]
    path = _write(tmp_path, build_pdf(plain))
    read = parse_and_chunk(path, path.name)
    assert parse_and_chunk(path, path.name, tuning=replace(DEFAULTS, pdf_text_engine="pdfminer")) == read
    assert [c.section_title for c in read] == ["Records"]  # a short verbless line: the guess says Title


def test_a_heading_in_a_scaled_text_matrix_is_found(tmp_path, no_spacy):
    """``1 Tf`` with the size in the text matrix (as some generators write): the effective
    size counts, not the font size operand."""
    content = (b"BT /F2 1 Tf 16 0 0 16 72 700 Tm (Scaled heading) Tj ET\n"
               b"BT /F1 11 Tf 72 670 Td (The body text is set at eleven points on this page.) Tj ET\n")
    path = _write(tmp_path, _one_page_pdf(content))
    kinds = [(el.category, el.text) for el in parse_pdf(path, path.name)]
    assert kinds == [("Title", "Scaled heading"), ("NarrativeText", "The body text is set at eleven points on this page.")]


def test_a_heading_line_right_above_its_paragraph_is_its_own_title(tmp_path, no_spacy):
    """Set tight enough that pdfminer's grouping would make one box of them, a heading line
    and a body line still become two elements."""
    content = (b"BT /F2 13 Tf 72 700 Td (Opening hours) Tj /F1 11 Tf 0 -14 Td "
               b"(The archive opens at nine and closes at five on weekdays.) Tj ET\n")
    path = _write(tmp_path, _one_page_pdf(content))
    kinds = [(el.category, el.text) for el in parse_pdf(path, path.name)]
    assert kinds == [("Title", "Opening hours"), ("NarrativeText", "The archive opens at nine and closes at five on weekdays.")]


def test_bold_words_or_a_bold_line_inside_a_paragraph_make_no_title(tmp_path, no_spacy):
    """Only a line set (nearly) wholly in a heading style is a heading line, and a bold line
    at the body size stays in its paragraph's box (it may be a bold sentence of it)."""
    content = (b"BT /F2 13 Tf 72 700 Td (Leave) Tj ET\n"
               b"BT /F2 11 Tf 72 670 Td (For bereavement) Tj /F1 11 Tf (, you can use the sick leave you have.) Tj ET\n"
               b"BT /F2 11 Tf 72 640 Td (Lock your computer before you leave it.) Tj /F1 11 Tf 0 -14 Td "
               b"(Press the control, shift and power keys together to lock it.) Tj ET\n")
    path = _write(tmp_path, _one_page_pdf(content))
    kinds = [(el.category, el.text) for el in parse_pdf(path, path.name)]
    assert kinds == [
        ("Title", "Leave"),
        ("NarrativeText", "For bereavement , you can use the sick leave you have."),
        ("NarrativeText", "Lock your computer before you leave it. Press the control, shift and power keys together to lock it."),
    ]


@pytest.mark.skipif(not parsing.ocr_available(), reason="tesseract-ocr is not installed")
def test_a_scanned_page_is_still_ocrd_beside_a_text_page_typed_by_fonts(tmp_path, no_spacy):
    path = _write(tmp_path, files.mixed_pdf(), "mixed.pdf")
    chunks = parse_and_chunk(path, path.name)
    first = [c for c in chunks if c.page_number == 1]
    scanned = [c for c in chunks if c.page_number == 2]
    assert {c.section_title for c in first} >= {"Records Retention Schedule", "Clinical records"}
    assert not any(c.metadata.get("ocr") for c in first)
    assert scanned and all(c.metadata.get("ocr") for c in scanned)
    assert "Fire doors must stay closed" in " ".join(" ".join(c.text.split()) for c in scanned)


def _one_page_pdf(content: bytes) -> bytes:
    """A one-page PDF 1.4 with Helvetica (/F1) and Helvetica-Bold (/F2) and this content."""
    import io

    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        5: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
           b"/Contents 6 0 R >>",
        6: f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"endstream",
    }
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for number in sorted(objects):
        out.write(f"{offsets[number]:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()
