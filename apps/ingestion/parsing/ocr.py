"""OCR with the local tesseract binary: image files, and PDF pages rendered by pdfium.

pdfium decodes every image filter a PDF may use (Flate, DCT, JPX, CCITT fax, JBIG2), so a
page is OCR'd from its rendering, never from an extracted image stream. No model is
downloaded: the language data comes from the Debian package tesseract-ocr-eng.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from apps.ingestion.parsing import messages
from apps.ingestion.parsing.tuning import current

OCR_DPI = 200


def ocr_available() -> bool:
    """Whether the tuning's tesseract binary (``tesseract_cmd``) is there to run."""
    return shutil.which(current().tesseract_cmd) is not None


def _ocr(image: Any) -> str:
    """Tesseract (the tuning's ``tesseract_cmd``) through unstructured's pytesseract fork (a
    subprocess per image)."""
    from unstructured_pytesseract import image_to_string, pytesseract

    pytesseract.tesseract_cmd = current().tesseract_cmd  # the fork's own switch: a module global
    return image_to_string(image, lang="eng", config="--psm 3")


def text_elements(text: str, page_number: int) -> list[Any]:
    """OCR text as one NarrativeText per paragraph (blank-line separated), on its page."""
    from unstructured.documents.elements import ElementMetadata, NarrativeText

    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if paragraph:
            element = NarrativeText(paragraph, metadata=ElementMetadata(page_number=page_number))
            # An ad-hoc metadata field: unstructured drops detection_origin unless its debug
            # metadata is switched on, so that field cannot carry the mark.
            element.metadata.ocr = True
            out.append(element)
    return out


def ocr_image_elements(path: Path, declared_name: str) -> list[Any]:
    """Every frame of an image file (a multi-page TIFF has several), OCR'd as one page each."""
    from PIL import Image

    if not ocr_available():
        raise messages.no_ocr(declared_name, "is an image")
    elements = []
    with Image.open(path) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            elements += text_elements(_ocr(image.convert("L")), index + 1)
    return elements


def ocr_pdf_page(page: Any, number: int) -> list[Any]:
    """One pdfium page rendered in grey at OCR_DPI (less for huge pages: the pixel limit
    holds), read by tesseract."""
    width, height = page.get_size()
    scale, max_pixels = OCR_DPI / 72, current().image_max_pixels
    if width * height * scale * scale > max_pixels:
        scale = (max_pixels / (width * height)) ** 0.5
    image = page.render(scale=scale, grayscale=True).to_pil()
    return text_elements(_ocr(image), number)
