"""PDFs that open in every viewer but trip naive readers, each with its expected outcome,
through both text engines (pdfium, the default, and pdfminer, its fallback).

Plain functions, no database: apps.ingestion.parsing is pure Python, given the tuning the
settings make (as the worker passes it: apps.ingestion.parse_settings). Builders in tests/files.py.
"""

from __future__ import annotations

import pytest

from apps.ingestion import parsing
from apps.ingestion.parse_settings import parse_tuning
from apps.ingestion.parsing import ParseError, ocr, parse_and_chunk
from tests import files

ENGINES = ["pdfium", "pdfminer"]
needs_tesseract = pytest.mark.skipif(not parsing.ocr_available(), reason="tesseract-ocr is not installed")


@pytest.fixture(params=ENGINES)
def engine(request, settings):
    settings.PDF_TEXT_ENGINE = request.param
    return request.param


@pytest.fixture
def ocr_calls(monkeypatch):
    """Every page image tesseract is given (the real tesseract still reads it)."""
    calls = []
    real = ocr._ocr

    def counting(image):
        calls.append(image.size)
        return real(image)

    monkeypatch.setattr(ocr, "_ocr", counting)
    return calls


def parse(tmp_path, data: bytes, name: str = "upload.pdf"):
    path = tmp_path / "stored"
    path.write_bytes(data)
    return parse_and_chunk(path, name, tuning=parse_tuning())


def text_of(chunks) -> str:
    return " ".join(" ".join(c.text.split()) for c in chunks)


def test_missing_document_information_object_is_not_damaged(tmp_path, engine):
    chunks = parse(tmp_path, files.pdf_with_missing_info_object())
    assert "Patient records are retained for 10 years" in text_of(chunks)
    assert {c.page_number for c in chunks} == {1, 2}


@needs_tesseract
def test_fax_compressed_scan_is_ocrd(tmp_path, engine, ocr_calls):
    chunks = parse(tmp_path, files.fax_scan_pdf(), "fax.pdf")
    assert "Fire doors must stay closed" in text_of(chunks)
    assert all(c.page_number == 1 and c.metadata.get("ocr") for c in chunks)
    assert len(ocr_calls) == 1


@needs_tesseract
def test_mixed_pdf_ocrs_only_the_page_without_text(tmp_path, engine, ocr_calls):
    chunks = parse(tmp_path, files.mixed_pdf(), "mixed.pdf")
    page1 = [c for c in chunks if c.page_number == 1]
    page2 = [c for c in chunks if c.page_number == 2]
    assert "Patient records are retained for 10 years" in text_of(page1)
    assert not any(c.metadata.get("ocr") for c in page1)  # text layer, never OCR'd
    assert "Fire doors must stay closed" in text_of(page2) and all(c.metadata.get("ocr") for c in page2)
    assert len(ocr_calls) == 1  # the scanned page only


def test_blank_pages_are_not_sent_to_ocr(tmp_path, engine, ocr_calls):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("make_binary_samples", files.SAMPLES / "make_binary_samples.py")
    maker = importlib.util.module_from_spec(spec)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(maker)
    finally:
        sys.dont_write_bytecode = before
    with pytest.raises(ParseError, match="no text layer") as info:
        parse(tmp_path, maker.build_pdf([[], []]))
    assert info.value.code == "no_text" and ocr_calls == []


def test_scan_without_tesseract_says_ocr_is_missing(tmp_path, settings):
    settings.TESSERACT_CMD = "tesseract-not-installed-here"
    with pytest.raises(ParseError, match="OCR is not installed") as info:
        parse(tmp_path, files.fax_scan_pdf())
    assert info.value.code == "no_ocr"


def test_encrypted_with_empty_user_password_is_read(tmp_path, engine):
    chunks = parse(tmp_path, files.encrypted_pdf_empty_user_password())
    assert "Backup tapes are overwritten after 35 days" in text_of(chunks)


def test_encrypted_with_a_user_password_is_refused(tmp_path, engine):
    with pytest.raises(ParseError, match="password-protected") as info:
        parse(tmp_path, files.encrypted_pdf())
    assert info.value.code == "encrypted"


def test_filled_form_field_values_are_indexed(tmp_path, engine):
    chunks = parse(tmp_path, files.form_pdf("Harbour Road archive, room 4"))
    holding = [c for c in chunks if "Harbour Road archive, room 4" in c.text]
    assert len(holding) == 1 and holding[0].page_number == 1
    assert "Patient records are retained for 10 years" in text_of(chunks)


def test_right_to_left_text_comes_out_in_reading_order(tmp_path, settings):
    """pdfium reorders right-to-left lines into logical order (what a reader types into the
    search box); pdfminer returns the glyphs left to right, so the words come out reversed:
    one reason pdfium is the default."""
    settings.PDF_TEXT_ENGINE = "pdfium"
    chunks = parse(tmp_path, files.right_to_left_pdf())
    for line in files.RIGHT_TO_LEFT_LINES:
        assert line in text_of(chunks)
    settings.PDF_TEXT_ENGINE = "pdfminer"
    mined = text_of(parse(tmp_path, files.right_to_left_pdf()))
    assert files.RIGHT_TO_LEFT_LINES[0][::-1] in mined  # the known limitation of the fallback


def test_a_page_pdfium_cannot_load_is_read_by_pdfminer(tmp_path, monkeypatch):
    """The fallback is per page: pages pdfium loads keep its text, the others get pdfminer's."""
    import pypdfium2 as pdfium

    real_get_page = pdfium.PdfDocument.get_page

    def failing_second_page(self, index):
        if index == 1:
            raise pdfium.PdfiumError("Failed to load page.")
        return real_get_page(self, index)

    monkeypatch.setattr(pdfium.PdfDocument, "get_page", failing_second_page)
    chunks = parse(tmp_path, files.text_pdf())
    assert "Patient records are retained for 10 years" in text_of([c for c in chunks if c.page_number == 1])
    assert "Backup tapes are overwritten after 35 days" in text_of([c for c in chunks if c.page_number == 2])


def test_unknown_engine_is_a_configuration_error(tmp_path, settings):
    settings.PDF_TEXT_ENGINE = "pymupdf"
    with pytest.raises(parsing.ConfigurationError, match="PDF_TEXT_ENGINE"):
        parse(tmp_path, files.text_pdf())
