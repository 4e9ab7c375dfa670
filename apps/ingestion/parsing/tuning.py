"""The parsers' tunables, passed in by whoever calls the package (it stays free of Django).

The worker and the web process build one from their settings (the ``INGEST_*``,
``PDF_TEXT_ENGINE``, ``TESSERACT_CMD`` and ``SPACY_SENTENCES`` settings of
rag_platform.conf.ingestion, through apps.ingestion.parse_settings) and hand it over with
each job: as an argument of the function the sandboxed child runs, so the child, whose
environment is cleared, needs neither a variable nor Django to know it. Callers without
Django (a test, a benchmark) get :data:`DEFAULTS`, the one place the defaults are written
(the settings take theirs from here).

``parse_and_chunk(..., tuning=...)`` and ``warm_up(tuning)`` make a tuning :func:`current`
for the duration of the call (a context variable: a thread or a later call is unaffected);
the checks, the PDF reader and OCR read it there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class ParseTuning:
    # What a container may expand to (zip bombs): declared bytes, ratio per member, members.
    zip_max_total_bytes: int = 512 * 1024 * 1024
    zip_max_ratio: int = 200
    zip_max_members: int = 10_000
    # Pixels an image may have (pixel bombs); an OCR'd PDF page is rendered within it too.
    image_max_pixels: int = 60_000_000
    # The PDF text layer: "pdfium", or "pdfminer" for every page (apps.ingestion.parsing.pdf).
    pdf_text_engine: str = "pdfium"
    # The tesseract binary OCR runs (a name on PATH or a path); missing: no OCR.
    tesseract_cmd: str = "tesseract"
    # spaCy's sentence recogniser ("senter") or unstructured's own full pipeline ("parser").
    # Process-wide: the first ensure_offline_nlp of a process (the worker's warm-up) decides.
    spacy_sentences: str = "senter"


DEFAULTS = ParseTuning()
_current: ContextVar[ParseTuning] = ContextVar("parse_tuning", default=DEFAULTS)


def current() -> ParseTuning:
    """The tuning of the call in progress (``DEFAULTS`` outside one)."""
    return _current.get()


@contextmanager
def applied(tuning: ParseTuning | None) -> Iterator[ParseTuning]:
    """Make ``tuning`` current for the block; None keeps the current one."""
    if tuning is None:
        yield current()
        return
    token = _current.set(tuning)
    try:
        yield tuning
    finally:
        _current.reset(token)
