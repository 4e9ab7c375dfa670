"""PDF -> elements: the text layer through pdfium, OCR for pages that have none.

unstructured's ``fast`` strategy reads the text layer with pdfminer.six, which costs more
per page than embedding the page's chunks; pdfium (pypdfium2, the engine that also renders
pages for OCR) reads the same text layer much faster (both in docs/benchmarks.md). This
module builds from it what ``partition_pdf(strategy="fast")`` builds: lines grouped into
text boxes as pdfminer's layout analysis groups them (apps.ingestion.parsing.pdf_text),
sorted per page the same way, filled form-field values added, page numbers kept. Each box's
type (title, narrative text, list item) comes from the fonts the document sets it in, not
from unstructured's spaCy guess, when the fonts mark headings (apps.ingestion.parsing.
pdf_elements). The fast strategy finds no tables in PDFs, so neither does this.

* A page pdfium cannot read is read by pdfminer (unstructured's own pass, for those pages);
  the tuning's ``pdf_text_engine="pdfminer"`` (setting PDF_TEXT_ENGINE) forces it for every page.
* Whether a PDF is readable is decided by the engine that reads it: a file pdfium opens (as
  every viewer does, e.g. with a dangling document-information reference) is not "damaged".
* A page without text that shows an image (a scan, whatever its compression: CCITT fax,
  JBIG2, JPEG) is OCR'd when tesseract is installed; pages with text are never OCR'd.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any

from apps.ingestion.parsing import messages
from apps.ingestion.parsing.errors import ConfigurationError, ParseError
from apps.ingestion.parsing.parsers import NO_DETECTION
from apps.ingestion.parsing.pdf_elements import document_fonts, page_elements
from apps.ingestion.parsing.pdf_text import Box, Line, page_lines
from apps.ingestion.parsing.tuning import current

logger = logging.getLogger(__name__)

ENGINE_SETTING = "PDF_TEXT_ENGINE"  # the tuning's pdf_text_engine, as an operator sets it
ENGINES = ("pdfium", "pdfminer")


def text_engine() -> str:
    """The current tuning's text engine; an unknown one is a ConfigurationError."""
    engine = current().pdf_text_engine.strip().lower() or "pdfium"
    if engine not in ENGINES:
        raise ConfigurationError(f"{ENGINE_SETTING}={engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


def parse_pdf(path: Path, declared_name: str) -> list[Any]:
    import pypdfium2 as pdfium

    engine = text_engine()
    document = _open(path, declared_name)
    if document is None:  # pdfium cannot open it: pdfminer's word is final
        return _pdfminer_pages(path, declared_name, None)
    try:
        count = len(document)
        if count == 0:
            raise messages.pdf_without_pages(declared_name)
        forms = _init_forms(document)
        read: dict[int, tuple] = {}  # page number -> (lines, form field boxes, page size)
        unread: list[int] = []
        image_pages: list[int] = []
        for number in range(1, count + 1):
            if engine == "pdfminer":
                unread.append(number)
                continue
            try:
                page = document[number - 1]
            except pdfium.PdfiumError:
                unread.append(number)
                continue
            try:
                read[number] = _page_text(page, forms)
                if not any(read[number][:2]) and _shows_an_image(page):
                    image_pages.append(number)
            except pdfium.PdfiumError:
                unread.append(number)
            finally:
                page.close()
        fonts = document_fonts([lines for lines, _, _ in read.values()])  # the whole document's body font
        by_page: dict[int, list[Any]] = {
            number: page_elements(lines, fields, number, size, fonts) for number, (lines, fields, size) in read.items()}
        if unread:
            mined = _pdfminer_pages(path, declared_name, set(unread))
            for number in unread:
                by_page[number] = [el for el in mined if el.metadata.page_number == number]
            if any(not by_page[n] for n in unread) and engine == "pdfium":
                # A page pdfium cannot load and pdfminer finds nothing on: its content is
                # gone. Refuse rather than index part of a document.
                raise messages.damaged_pdf(declared_name)
        without_text = [n for n in range(1, count + 1) if not by_page.get(n)]
        if engine == "pdfminer":  # no pdfium text pass, so no image check yet
            image_pages = [n for n in without_text if _page_shows_an_image(document, n)]
        if image_pages:
            for number, elements in _ocr_pages(document, image_pages, declared_name, has_text=len(without_text) < count):
                by_page[number] = elements
    finally:
        document.close()
    return [el for number in sorted(by_page) for el in by_page[number]]


def _open(path: Path, declared_name: str):
    """The pdfium document, or None when pdfium cannot open it (pdfminer may still).
    A password that is not empty cannot be guessed: that is the admin's to remove."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise messages.password_protected(declared_name) from exc
        logger.info("pdfium cannot open %s (%s): trying pdfminer", declared_name, exc)
        return None


def _page_text(page: Any, forms: Any) -> tuple[list[Line], list[Box], tuple[float, float]]:
    """One page's text lines with their fonts, its filled form fields, and its size."""
    textpage = page.get_textpage()
    try:
        lines = page_lines(textpage)
    finally:
        textpage.close()
    fields = [Box(text, left, bottom, right, top, top - bottom) for text, (left, bottom, right, top) in _form_values(page, forms)]
    return lines, fields, page.get_size()


def _init_forms(document: Any) -> Any:
    """The form environment, for a PDF with fillable fields (before any page is loaded)."""
    import pypdfium2.raw as pdfium_c

    if document.get_formtype() == pdfium_c.FORMTYPE_NONE:
        return None
    document.init_forms()
    return document.formenv


def _form_values(page: Any, forms: Any) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Filled text and choice fields: their values live in widget annotations, not in the
    page's text (as unstructured's pdfminer pass recovers them)."""
    if forms is None:
        return []
    import pypdfium2.raw as pdfium_c

    wanted = {pdfium_c.FPDF_FORMFIELD_TEXTFIELD, pdfium_c.FPDF_FORMFIELD_COMBOBOX, pdfium_c.FPDF_FORMFIELD_LISTBOX}
    out = []
    for index in range(pdfium_c.FPDFPage_GetAnnotCount(page.raw)):
        annot = pdfium_c.FPDFPage_GetAnnot(page.raw, index)
        try:
            if pdfium_c.FPDFAnnot_GetSubtype(annot) != pdfium_c.FPDF_ANNOT_WIDGET:
                continue
            if pdfium_c.FPDFAnnot_GetFormFieldType(forms.raw, annot) not in wanted:
                continue
            size = pdfium_c.FPDFAnnot_GetFormFieldValue(forms.raw, annot, None, 0)
            if size <= 2:
                continue
            buffer = ctypes.create_string_buffer(size)
            pdfium_c.FPDFAnnot_GetFormFieldValue(forms.raw, annot, ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR)), size)
            value = buffer.raw[: size - 2].decode("utf-16-le", errors="replace").strip()
            rect = pdfium_c.FS_RECTF()
            if value and pdfium_c.FPDFAnnot_GetRect(annot, rect):
                out.append((value, (rect.left, min(rect.bottom, rect.top), rect.right, max(rect.bottom, rect.top))))
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annot)
    return out


def _shows_an_image(page: Any) -> bool:
    import pypdfium2.raw as pdfium_c

    return next(iter(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=4)), None) is not None


def _page_shows_an_image(document: Any, number: int) -> bool:
    import pypdfium2 as pdfium

    try:
        page = document[number - 1]
    except pdfium.PdfiumError:
        return False
    try:
        return _shows_an_image(page)
    finally:
        page.close()


def _ocr_pages(document: Any, numbers: list[int], declared_name: str, *, has_text: bool):
    """(page number, elements) for each image-only page, OCR'd. Without tesseract a scan
    with no text at all is refused; a mixed PDF keeps its text pages."""
    from apps.ingestion.parsing.ocr import ocr_available, ocr_pdf_page

    if not ocr_available():
        if has_text:
            logger.info("%s: %d scanned page(s) not OCR'd (tesseract is not installed)", declared_name, len(numbers))
            return
        raise messages.no_ocr(declared_name, "has no text layer (it is a scan)")
    for number in numbers:
        page = document[number - 1]
        try:
            yield number, [el for el in ocr_pdf_page(page, number) if el.text.strip()]
        finally:
            page.close()


def _pdfminer_pages(path: Path, declared_name: str, numbers: set[int] | None) -> list[Any]:
    """unstructured's fast strategy (pdfminer), for the given pages or all of them."""
    from unstructured.partition.pdf import partition_pdf

    try:
        elements = partition_pdf(
            filename=str(path), strategy="fast", infer_table_structure=False, extract_images_in_pdf=False,
            languages=NO_DETECTION,  # no OCR here: our OCR passes tesseract its languages
        )
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - neither engine can read it: it is damaged
        name = type(exc).__name__
        if "Password" in name or "Encrypt" in name:
            raise messages.password_protected(declared_name) from exc
        raise messages.damaged_pdf(declared_name) from exc
    return [el for el in elements if numbers is None or el.metadata.page_number in numbers]
