"""Every document format the platform reads, declared once (as paperless-ngx declares its parsers).

One :class:`Format` per extension: its MIME type, the parser that turns it into elements,
the checks it passes before the parser sees it, whether its content is binary (a text file
named like one is refused), and what a damaged file of the type is called and what the admin
can do about it. The extension sets, the checks run by ``parse_and_chunk``, the parser
lookup and the "damaged" messages all come from this table; adding a format is one row.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.ingestion.parsing import messages, parsers
from apps.ingestion.parsing.pdf import parse_pdf
from apps.ingestion.parsing.safety import check_image_size, check_pdf_complete, check_zip_safe

Parser = Callable[[Path, str], list[Any]]
Check = Callable[[Path, str], None]


def check_office_zip(path: Path, declared_name: str) -> None:
    """An OOXML/ODF container: no zip bomb, no hostile XML part (apps.ingestion.parsing.safety).
    A container that cannot be opened raises ``zipfile.BadZipFile`` (reported as damaged)."""
    with zipfile.ZipFile(path) as zf:
        check_zip_safe(zf, declared_name, archive=False)


@dataclass(frozen=True)
class Format:
    ext: str
    mime: str
    parser: Parser
    checks: tuple[Check, ...] = ()
    binary: bool = False
    label: str = ""  # "could not be read as <label>"; "" for text
    advice: str = ""  # what to do with a damaged file


_SAVE_AGAIN = "Open it, save it again, and re-upload."
_EXPORT_IMAGE = "Export the image again and re-upload."
_OOXML = "application/vnd.openxmlformats-officedocument."
_OFFICE = (check_office_zip,)
_IMAGE = (check_image_size,)

FORMATS: dict[str, Format] = {f.ext: f for f in (
    Format(".txt", "text/plain", parsers.parse_text),
    Format(".md", "text/markdown", parsers.parse_markdown),
    Format(".markdown", "text/markdown", parsers.parse_markdown),
    Format(".html", "text/html", parsers.parse_html),
    Format(".htm", "text/html", parsers.parse_html),
    Format(".pdf", "application/pdf", parse_pdf, (check_pdf_complete,), True, "a PDF", messages.PDF_ADVICE),
    Format(".docx", _OOXML + "wordprocessingml.document", parsers.parse_docx, _OFFICE, True,
           "a Word .docx document", "Open it in Word, save it again as .docx, and re-upload."),
    Format(".pptx", _OOXML + "presentationml.presentation", parsers.parse_pptx, _OFFICE, True,
           "a PowerPoint .pptx presentation", _SAVE_AGAIN),
    Format(".xlsx", _OOXML + "spreadsheetml.sheet", parsers.parse_xlsx, _OFFICE, True, "an Excel .xlsx workbook",
           _SAVE_AGAIN),
    Format(".csv", "text/csv", parsers.parse_csv),
    Format(".eml", "message/rfc822", parsers.parse_eml, label="an e-mail",
           advice="Save the message again from the mail program (.eml) and re-upload."),
    Format(".msg", "application/vnd.ms-outlook", parsers.parse_msg, binary=True, label="an Outlook e-mail",
           advice="Save the message again from Outlook (File > Save As, .msg) and re-upload."),
    Format(".odt", "application/vnd.oasis.opendocument.text", parsers.parse_odt, _OFFICE, True,
           "an OpenDocument .odt text", _SAVE_AGAIN),
    Format(".rtf", "application/rtf", parsers.parse_rtf, label="an RTF document", advice=_SAVE_AGAIN),
    Format(".png", "image/png", parsers.parse_image, _IMAGE, True, "a PNG image", _EXPORT_IMAGE),
    Format(".jpg", "image/jpeg", parsers.parse_image, _IMAGE, True, "a JPEG image", _EXPORT_IMAGE),
    Format(".jpeg", "image/jpeg", parsers.parse_image, _IMAGE, True, "a JPEG image", _EXPORT_IMAGE),
    Format(".tif", "image/tiff", parsers.parse_image, _IMAGE, True, "a TIFF image", _EXPORT_IMAGE),
    Format(".tiff", "image/tiff", parsers.parse_image, _IMAGE, True, "a TIFF image", _EXPORT_IMAGE),
)}

SUPPORTED_EXTENSIONS: dict[str, str] = {ext: f.mime for ext, f in FORMATS.items()}
IMAGE_EXTENSIONS = {ext for ext, f in FORMATS.items() if f.parser is parsers.parse_image}
OFFICE_ZIP_EXTENSIONS = {ext for ext, f in FORMATS.items() if check_office_zip in f.checks}
# Archives are unpacked at upload (apps.ingestion.archives); each member is one document.
ARCHIVE_EXTENSIONS = {".zip"}
# Legacy binary Office formats need LibreOffice, which this platform does not install.
LEGACY_OFFICE_EXTENSIONS = {".doc", ".xls", ".ppt"}
BINARY_EXTENSIONS = {ext for ext, f in FORMATS.items() if f.binary} | ARCHIVE_EXTENSIONS


def format_for(ext: str) -> Format:
    """The format of a supported extension (KeyError for any other)."""
    return FORMATS[ext]
