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


def witness_append(document: dict[str, Any]) -> None:
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
        _syslog(line.decode().strip())


def _syslog(line: str) -> None:
    address = "/dev/log" if Path("/dev/log").exists() else None
    if address is None:
        logger.warning("RAG_AUDIT_WITNESS_SYSLOG is on but /dev/log does not exist")
        return
    handler = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV)
    try:
        handler.emit(logging.makeLogRecord({"msg": f"rag-audit-head {line}", "levelno": logging.INFO,
                                            "levelname": "INFO"}))
    finally:
        handler.close()


def witness_read(path: Path | None = None) -> list[dict[str, Any]]:
    """Every signed head in the witness file, oldest first (a torn last line is ignored)."""
    path = path or witness_path()
    documents = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                documents.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return documents
