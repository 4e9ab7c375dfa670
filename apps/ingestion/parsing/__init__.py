"""Turn one uploaded file into chunks, with unstructured, without touching the network.

Pure Python (no Django), so it can run in a worker's child process with its own limits.

    detect_file_type(path, declared_name) -> ".pdf" | ".docx" | ".md" | ".txt" | ".html" ...
    parse_and_chunk(path, declared_name, tuning=ParseTuning(...)) -> [ChunkDraft(text, page_number, ...)]

Every problem with the *file* is a :class:`ParseError` whose message is written for a corpus
admin (what is wrong, what to do). Anything else (a bug, a broken installation, an attempted
download) is not a ParseError and must not be blamed on the document.

One module per job: ``offline`` (unstructured kept offline, its spaCy pipeline cheap),
``filetypes`` (what a file is, by content), ``safety`` (bombs, traversal, hostile XML),
``messages`` (what an admin reads), ``formats`` (the table of formats: MIME type, parser,
checks, labels), ``parsers`` (office, mail, image and text formats), ``pdf`` (text layer
through pdfium, pdfminer as fallback; ``pdf_text``: its lines, boxes and fonts;
``pdf_elements``: element types from the fonts), ``ocr`` (tesseract), ``encoding`` (text or binary),
``chunking`` (title-based chunks), ``tuning`` (the limits and switches a caller passes in).
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from xml.etree.ElementTree import ParseError as XMLSyntaxError

from apps.ingestion.parsing import messages
from apps.ingestion.parsing.chunking import (
    CHUNK_MAX_CHARACTERS,
    CHUNK_NEW_AFTER_CHARACTERS,
    CHUNK_OVERLAP_CHARACTERS,
    ChunkDraft,
    chunk_elements,
)
from apps.ingestion.parsing.errors import ConfigurationError, OfflineViolation, ParseError
from apps.ingestion.parsing.filetypes import detect_file_type
from apps.ingestion.parsing.formats import (
    ARCHIVE_EXTENSIONS,
    LEGACY_OFFICE_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    Format,
    format_for,
)
from apps.ingestion.parsing.ocr import OCR_DPI, ocr_available
from apps.ingestion.parsing.offline import SPACY_MODEL_PACKAGE, ensure_offline_nlp, warm_up
from apps.ingestion.parsing.safety import check_zip_safe
from apps.ingestion.parsing.tuning import ParseTuning, applied

__all__ = [
    "ARCHIVE_EXTENSIONS", "CHUNK_MAX_CHARACTERS", "CHUNK_NEW_AFTER_CHARACTERS", "CHUNK_OVERLAP_CHARACTERS",
    "ConfigurationError", "LEGACY_OFFICE_EXTENSIONS", "OCR_DPI", "SPACY_MODEL_PACKAGE",
    "SUPPORTED_EXTENSIONS", "ChunkDraft", "OfflineViolation", "ParseError", "ParseTuning", "check_zip_safe",
    "detect_file_type", "ensure_offline_nlp", "ocr_available", "parse_and_chunk", "warm_up",
]

logger = logging.getLogger(__name__)


def parse_and_chunk(
    path: Path,
    declared_name: str,
    *,
    max_characters: int = CHUNK_MAX_CHARACTERS,
    new_after_n_chars: int = CHUNK_NEW_AFTER_CHARACTERS,
    overlap: int = CHUNK_OVERLAP_CHARACTERS,
    combine_text_under_n_chars: int = 0,
    multipage_sections: bool = False,
    tuning: ParseTuning | None = None,
) -> list[ChunkDraft]:
    """Detect the type by content, run the safety checks, partition with the type's parser
    and chunk by title (see apps.ingestion.parsing.chunking for the chunking choices), with
    ``tuning``'s limits and switches (default: the current ones, apps.ingestion.parsing.tuning)."""
    with applied(tuning):
        return _parse_and_chunk(Path(path), declared_name, dict(
            max_characters=max_characters, new_after_n_chars=new_after_n_chars, overlap=overlap,
            combine_text_under_n_chars=combine_text_under_n_chars, multipage_sections=multipage_sections))


def _parse_and_chunk(path: Path, declared_name: str, chunking: dict) -> list[ChunkDraft]:
    ensure_offline_nlp()
    ext = detect_file_type(path, declared_name)
    if ext in ARCHIVE_EXTENSIONS:
        raise messages.unsupported(declared_name, "is a zip archive",
                                   "Upload it as an archive: its documents are unpacked at upload.")
    fmt = format_for(ext)
    try:
        for check in fmt.checks:
            check(path, declared_name)
    except (zipfile.BadZipFile, XMLSyntaxError) as exc:  # an office container or part that cannot be read
        raise _damaged(fmt, declared_name) from exc
    try:
        elements = fmt.parser(path, declared_name)
    except (ParseError, OfflineViolation, ConfigurationError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - the file is at fault; the cause stays chained
        logger.info("partitioning %s (%s) failed: %r", declared_name, ext, exc)
        raise _damaged(fmt, declared_name) from exc
    elements = [el for el in elements if (el.text or "").strip()]
    if not elements:
        raise messages.no_text(ext, declared_name)
    return chunk_elements(elements, **chunking)


def _damaged(fmt: Format, declared_name: str) -> ParseError:
    if fmt.ext == ".pdf":
        return messages.damaged_pdf(declared_name)
    return messages.damaged(declared_name, fmt.label, fmt.advice)
