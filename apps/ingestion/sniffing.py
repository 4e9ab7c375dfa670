"""What an upload is, decided in the parse sandbox, not in the process that received it.

Deciding a file's type reads its raw bytes with native parsers: libmagic (python-magic),
zlib and olefile's structures, and for a few text cases unstructured's guesser (libmagic
again). A memory-safety bug in one of them would otherwise run inside the web process, which
holds the database connection and the secret key (security review, finding 5). So
``upload_file_type`` runs ``detect_file_type`` in a child of apps.ingestion.sandbox: clean
environment, no descriptor but its result pipe, no network, memory/CPU/wall-clock limits.
The uploader still learns at once why a file is refused; libmagic is never loaded in the
uploading process (tests/test_upload_sniffing.py checks the web process's own memory map).
A child costs a fork per file (docs/benchmarks.md), so the files of one bulk upload share one
(``sniff_session``, entered by apps.ingestion.services.bulk_enqueue).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from apps.ingestion.parsing import ARCHIVE_EXTENSIONS, SUPPORTED_EXTENSIONS, ParseError, detect_file_type

from apps.ingestion.sandbox import run_limited
from apps.ingestion.sandbox_session import LimitedSession
from apps.ingestion.sandbox_wire import ChildRaised, SandboxError

_bulk = threading.local()
KNOWN_TYPES = frozenset(SUPPORTED_EXTENSIONS) | frozenset(ARCHIVE_EXTENSIONS) | {".zip"}


class SniffFailed(RuntimeError):
    """The type check itself failed (a bug or a broken installation), not the file."""


def _detect_in_child(path: str, declared_name: str) -> str:
    return detect_file_type(Path(path), declared_name)


@contextmanager
def sniff_session() -> Iterator[None]:
    """The type checks of the uploads inside this block (one uploader's folder, zip or
    multi-file form: apps.ingestion.services.bulk_enqueue) share one sandboxed child
    (apps.ingestion.sandbox_session) instead of a fork each."""
    if getattr(_bulk, "session", None) is not None:  # nested: the outer block's child
        yield
        return
    _bulk.session = LimitedSession(_detect_in_child, memory_bytes=settings.INGEST_SNIFF_MEMORY_MB * 1024 * 1024,
                                   wall_seconds=settings.INGEST_SNIFF_SECONDS * 2)
    try:
        yield
    finally:
        session, _bulk.session = _bulk.session, None
        session.close()


def upload_file_type(path: Path, declared_name: str) -> str:
    """``detect_file_type(path, declared_name)``, run in the sandbox.

    A file the checks refuse raises :class:`ParseError` with the same message as before; a
    file that makes the check exceed its limits is refused as malformed or hostile."""
    memory_mb, seconds = settings.INGEST_SNIFF_MEMORY_MB, settings.INGEST_SNIFF_SECONDS
    session = getattr(_bulk, "session", None)
    try:
        if session is not None:
            value = session.call_with_file(str(path), declared_name)
        else:
            value = run_limited(_detect_in_child, str(path), declared_name, memory_bytes=memory_mb * 1024 * 1024,
                                cpu_seconds=seconds, wall_seconds=seconds * 2, readable=(str(path),)).value
    except SandboxError as error:
        raise ParseError(
            f"the type check {error} and was stopped (limits: {memory_mb} MiB, {seconds} s); "
            "the file may be malformed or hostile.", code=f"limit_{error.code}") from None
    except ChildRaised as raised:
        raise _refusal(raised, memory_mb, seconds) from None
    if value not in KNOWN_TYPES:  # the child's answer is one of the known types, nothing else
        raise ParseError("the type check returned an unknown type; the file may be malformed or hostile.",
                         code="corrupt")
    return value


def _refusal(raised: ChildRaised, memory_mb: int, seconds: int) -> Exception:
    """What the uploader is told when the check raised in the child: its ParseError, or a
    limit (libmagic's own "Memory exhausted"), or SniffFailed for anything else."""
    if raised.type_name == "ParseError":  # message bounded by the sandbox, code from a fixed set
        code = raised.code if re.fullmatch(r"[a-z_]{1,40}", str(raised.code or "")) else "corrupt"
        return ParseError(raised.message, code=code)
    if "Memory exhausted" in raised.message:  # libmagic's own
        return ParseError(f"the type check needed more than {memory_mb} MiB of memory and was stopped (limits: "
                          f"{memory_mb} MiB, {seconds} s); the file may be malformed or hostile.", code="limit_memory")
    return SniffFailed(f"checking the file type raised {raised.type_name}: {raised.message}\n{raised.traceback}")
