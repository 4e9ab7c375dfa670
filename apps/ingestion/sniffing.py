"""What an upload is, decided in the parse sandbox, not in the process that received it.

Deciding a file's type reads its raw bytes with native parsers: libmagic (python-magic),
zlib and olefile's structures, and for a few text cases unstructured's guesser (libmagic
again). A memory-safety bug in one of them would otherwise run inside the web process, which
holds the database connection and the secret key (security review, finding 5). So
``upload_file_type`` runs ``detect_file_type`` in a child of apps.ingestion.sandbox: clean
environment, no descriptor but its result pipe, no network, memory/CPU/wall-clock limits.
The uploader still learns at once why a file is refused; libmagic is never loaded in the
uploading process (tests/test_upload_sniffing.py checks the web process's own memory map).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from apps.ingestion.parsing import ParseError, detect_file_type
from apps.ingestion.sandbox import SandboxError, run_limited


class SniffFailed(RuntimeError):
    """The type check itself failed (a bug or a broken installation), not the file."""


def _detect_in_child(path: str, declared_name: str) -> str:
    return detect_file_type(Path(path), declared_name)


def upload_file_type(path: Path, declared_name: str) -> str:
    """``detect_file_type(path, declared_name)``, run in the sandbox.

    A file the checks refuse raises :class:`ParseError` with the same message as before; a
    file that makes the check exceed its limits is refused as malformed or hostile."""
    memory_mb, seconds = settings.INGEST_SNIFF_MEMORY_MB, settings.INGEST_SNIFF_SECONDS
    try:
        result = run_limited(_detect_in_child, str(path), declared_name, memory_bytes=memory_mb * 1024 * 1024,
                             cpu_seconds=seconds, wall_seconds=seconds * 2)
    except SandboxError as error:
        raise ParseError(
            f"the type check {error} and was stopped (limits: {memory_mb} MiB, {seconds} s CPU); "
            "the file may be malformed or hostile.", code=f"limit_{error.code}") from None
    payload = result.value
    if payload["ok"]:
        return payload["value"]
    if payload.get("type") == "ParseError":
        raise ParseError(payload["message"], code=payload.get("code") or "corrupt")
    raise SniffFailed(f"checking the file type raised {payload.get('type')}: {payload.get('message')}\n"
                      f"{payload.get('traceback', '')}")
