"""PDF -> elements: the text layer through pdfium, OCR for pages that have none.

unstructured's ``fast`` strategy reads the text layer with pdfminer.six, which costs more
per page than embedding the page's chunks; pdfium (pypdfium2, the engine that also renders
pages for OCR) reads the same text layer much faster (both in docs/benchmarks.md). This module builds from it what ``partition_pdf(strategy="fast")`` builds:
lines grouped into text boxes as pdfminer's layout analysis groups them (a box ends where
the gap to the next line exceeds half a line's height, as pdfminer's ``line_margin``), each
box classified by unstructured's ``element_from_text`` (title, narrative text, list item),
sorted per page the same way, filled form-field values added, page numbers kept. The fast
strategy finds no tables in PDFs, so neither does this.

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
from apps.ingestion.parsing.tuning import current

logger = logging.getLogger(__name__)

ENGINE_SETTING = "PDF_TEXT_ENGINE"  # the tuning's pdf_text_engine, as an operator sets it
ENGINES = ("pdfium", "pdfminer")
LINE_MARGIN = 0.5  # pdfminer's LAParams.line_margin: a gap over this x line height ends a box


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
        by_page: dict[int, list[Any]] = {}
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
                by_page[number] = _page_elements(page, number, forms)
                if not by_page[number] and _shows_an_image(page):
                    image_pages.append(number)
            except pdfium.PdfiumError:
                unread.append(number)
            finally:
                page.close()
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


def _page_elements(page: Any, number: int, forms: Any) -> list[Any]:
    """One page's text boxes as classified elements, in unstructured's reading order."""
    from unstructured.documents.coordinates import PixelSpace
    from unstructured.documents.elements import CoordinatesMetadata, ElementMetadata
    from unstructured.partition.text import element_from_text
    from unstructured.partition.utils.constants import SORT_MODE_BASIC, SORT_MODE_XY_CUT
    from unstructured.partition.utils.sorting import sort_page_elements

    width, height = page.get_size()
    system = PixelSpace(width=width, height=height)
    textpage = page.get_textpage()
    try:
        boxes = [*_text_boxes(textpage), *_form_values(page, forms)]
    finally:
        textpage.close()
    elements = []
    for text, (left, bottom, right, top) in boxes:
        text = " ".join(text.split())
        if not text:
            continue
        points = ((left, height - top), (left, height - bottom), (right, height - bottom), (right, height - top))
        element = element_from_text(text, coordinates=points, coordinate_system=system)
        element.metadata = ElementMetadata(page_number=number, coordinates=CoordinatesMetadata(points=points, system=system))
        elements.append(element)
    return sort_page_elements(sort_page_elements(elements, SORT_MODE_BASIC), SORT_MODE_XY_CUT)


def _text_boxes(textpage: Any) -> list[tuple[str, tuple[float, float, float, float]]]:
    """pdfium's text rectangles (runs of characters on one line, in content order) merged
    into lines, and consecutive lines into boxes as pdfminer groups them: vertically within
    LINE_MARGIN x the line height, and overlapping horizontally."""
    lines: list[list] = []  # [text, left, bottom, right, top]
    for index in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(index)
        text = textpage.get_text_bounded(left, bottom, right, top).replace("\x02", "-")
        if not text.strip():
            continue
        bottom, top = _line_extent(textpage, left, bottom, top)
        if lines and _same_line(lines[-1], bottom, top, left):
            line = lines[-1]
            line[0] = f"{line[0]} {text}"
            line[1], line[2], line[3], line[4] = min(line[1], left), min(line[2], bottom), max(line[3], right), max(line[4], top)
        else:
            lines.append([text, left, bottom, right, top])
    boxes: list[list] = []
    for text, left, bottom, right, top in lines:
        if boxes and _same_box(boxes[-1], left, bottom, right, top):
            box = boxes[-1]
            box[0] = f"{box[0]}\n{text}"
            box[1], box[2], box[3], box[4], box[5] = min(box[1], left), bottom, max(box[3], right), box[4], top - bottom
        else:
            boxes.append([text, left, bottom, right, top, top - bottom])
    return [(b[0], (b[1], b[2], b[3], b[4])) for b in boxes]


def _line_extent(textpage: Any, left: float, bottom: float, top: float) -> tuple[float, float]:
    """The vertical extent pdfminer gives a line: from the baseline plus the font's descent
    (about a fifth of the size below it) up by the font size. pdfium's rectangle hugs the
    glyphs instead (a line without ascenders or descenders is short), which would make the
    gaps between lines, and so the grouping into boxes, depend on the letters in them."""
    import pypdfium2.raw as pdfium_c

    char = textpage.get_index(left + 0.5, (bottom + top) / 2, 1.0, 1.0)
    if char is None or char < 0:
        return bottom, top
    size = pdfium_c.FPDFText_GetFontSize(textpage.raw, char)
    x, y = ctypes.c_double(), ctypes.c_double()
    if size <= 0 or not pdfium_c.FPDFText_GetCharOrigin(textpage.raw, char, ctypes.byref(x), ctypes.byref(y)):
        return bottom, top
    low = y.value - 0.2 * size
    return low, low + size


def _same_line(line: list, bottom: float, top: float, left: float) -> bool:
    height = max(line[4] - line[2], top - bottom, 1e-6)
    overlap = min(line[4], top) - max(line[2], bottom)
    return overlap > 0.5 * min(line[4] - line[2], top - bottom) and left - line[3] < 2 * height


def _same_box(box: list, left: float, bottom: float, right: float, top: float) -> bool:
    last_bottom, last_height = box[2], box[5]
    gap = last_bottom - top
    height = max(last_height, top - bottom)
    return -0.5 * height < gap <= LINE_MARGIN * height and min(box[3], right) > max(box[1], left)


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
