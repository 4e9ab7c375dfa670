"""The witness outside the database: every signed head appended to a file (and optionally syslog).

The file (``AUDIT_WITNESS_FILE``, default next to the data directory, not inside it) is
opened with O_APPEND and only ever grows by one JSON line per signed head. The operator
copies it off the machine (or points it at storage the database host cannot rewrite, or
makes it ``chattr +a``); verification compares the database with the newest line it finds
there, so a database rolled back behind its witness is reported as truncation with the
missing range, even after the checkpoint rows are gone.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def witness_path() -> Path:
    return Path(settings.AUDIT_WITNESS_FILE)


def witness_append(document: dict[str, Any], *, syslog_tag: str = "rag-audit-head") -> None:
    """Append one line: a signed head, or an alarm (``{"alarm": {...}}``, apps.audit.alarms)."""
    path = witness_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if settings.AUDIT_WITNESS_SYSLOG:
        _syslog(line.decode().strip(), tag=syslog_tag)


def _syslog(line: str, *, tag: str = "rag-audit-head") -> None:
    address = "/dev/log" if Path("/dev/log").exists() else None
    if address is None:
        logger.warning("RAG_AUDIT_WITNESS_SYSLOG is on but /dev/log does not exist")
        return
    handler = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV)
    try:
        handler.emit(logging.makeLogRecord({"msg": f"{tag} {line}", "levelno": logging.INFO,
                                            "levelname": "INFO"}))
    finally:
        handler.close()


def witness_read(path: Path | None = None) -> list[dict[str, Any]]:
    """Every signed head in the witness file, oldest first (a torn last line and alarm lines
    are passed over)."""
    path = path or witness_path()
    documents = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                document = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(document, dict) and "statement" in document:
                documents.append(document)
    return documents


def witness_tail(max_bytes: int = 512 * 1024, path: Path | None = None) -> list[dict[str, Any]]:
    """The lines (heads and alarms) in the last ``max_bytes`` of the witness file, oldest first:
    what the checkpointer compares with the database every run, at a cost that does not
    grow with the file."""
    path = path or witness_path()
    if not path.is_file():
        return []
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - max_bytes))
        data = handle.read()
    lines = data.split(b"\n")
    if size > max_bytes:
        lines = lines[1:]  # the first line is cut
    documents = []
    for line in lines:
        try:
            document = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(document, dict):
            documents.append(document)
    return documents
