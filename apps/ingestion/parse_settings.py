"""The parsers' settings, read where a job is sent: apps.ingestion.parsing is pure Python and
gets them as arguments, so the sandboxed child (its environment cleared) receives them with
its job rather than through a variable. Settings: rag_platform.conf.ingestion."""

from __future__ import annotations

from django.conf import settings

from apps.ingestion.parsing import ParseTuning


def parse_tuning() -> ParseTuning:
    """The limits and switches of apps.ingestion.parsing.tuning, from the settings."""
    return ParseTuning(
        zip_max_total_bytes=settings.INGEST_ZIP_MAX_TOTAL_BYTES,
        zip_max_ratio=settings.INGEST_ZIP_MAX_RATIO,
        zip_max_members=settings.INGEST_ZIP_MAX_MEMBERS,
        image_max_pixels=settings.INGEST_IMAGE_MAX_PIXELS,
        pdf_text_engine=settings.PDF_TEXT_ENGINE,
        tesseract_cmd=settings.TESSERACT_CMD,
        spacy_sentences=settings.SPACY_SENTENCES,
    )


def parse_options() -> dict:
    """The keyword arguments of ``parsing.parse_and_chunk`` for a stored document: the
    production chunking (CHUNK_*) and the tuning."""
    return {
        "max_characters": settings.CHUNK_MAX_CHARACTERS,
        "new_after_n_chars": settings.CHUNK_NEW_AFTER_CHARACTERS,
        "overlap": settings.CHUNK_OVERLAP_CHARACTERS,
        "tuning": parse_tuning(),
    }
