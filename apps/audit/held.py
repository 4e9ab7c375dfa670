"""Events that could not be written because the database was unavailable, held until it is back.

When PostgreSQL restarts or its disk is full, a question cannot be recorded; the asker is not
shown an answer (apps.answering.trace), and its one audit event is held here, in this
process's memory only (it carries the question, which is only ever stored sealed, so it is
never written to a spool file). The next successful write of this process appends what it
holds first, in order, and a retry thread tries every ``RETRY_SECONDS`` meanwhile. Each late
event's payload says when it happened and why it is late; its chain position is when it was
written. What a process holds is lost if that process dies before the database returns: the
log names each held event's request id, and ``audit_verify`` shows no gap in the chain, since
the chain only ever holds what was written.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone

from apps.audit.context import AuditContext, audit_context, current_context

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
MAX_HELD = 10_000  # a bound on memory; beyond it the oldest is dropped, and the log says so


@dataclass(frozen=True)
class HeldEvent:
    record: dict[str, Any]  # audit_record's keyword arguments
    context: AuditContext  # who asked from where, as when it happened
    held_at: datetime
    reason: str


_held: deque[HeldEvent] = deque()
_lock = threading.Lock()
_retrying = threading.Event()


def unavailable(error: BaseException) -> bool:
    """The database could not be reached or could not write (a restart, a closed connection, a
    full disk), as opposed to a bug or a refused statement; also when such an error is why
    ``error`` was raised (Django turns a session that cannot be saved into SessionInterrupted)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (OperationalError, InterfaceError)):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def hold(record: dict[str, Any], error: BaseException) -> None:
    """Keep ``record`` (audit_record's arguments) until the database takes it."""
    reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}"
    event = HeldEvent(record, current_context(), timezone.now(), reason)
    with _lock:
        if len(_held) >= MAX_HELD:
            dropped = _held.popleft()
            log.error("audit: dropped a held %s event of request %s (more than %d held)",
                      dropped.record.get("event_type"), dropped.context.request_id, MAX_HELD)
        _held.append(event)
    log.warning("audit: database unavailable (%s); holding the %s event of request %s until it is back",
                reason, record.get("event_type"), event.context.request_id or "-")
    _start_retrying()


def held_count() -> int:
    return len(_held)


def flush() -> int:
    """Append what this process holds, oldest first; stops at the first failure (the database
    is still away). Returns how many were written."""
    if not _held:
        return 0
    from apps.audit.services import audit_record

    written = 0
    with _lock:
        while _held:
            event = _held[0]
            payload = dict(event.record.get("payload") or {})
            payload["recorded_late"] = {"happened_at": event.held_at.isoformat(), "why": event.reason}
            try:
                with audit_context(event.context):
                    audit_record(**{**event.record, "payload": payload})
            except (OperationalError, InterfaceError):
                break
            _held.popleft()
            written += 1
    if written:
        log.warning("audit: wrote %d held event(s); %d still held", written, len(_held))
    return written


def _start_retrying() -> None:
    if _retrying.is_set():
        return
    _retrying.set()
    threading.Thread(target=_retry, name="audit-held-retry", daemon=True).start()


def _retry() -> None:
    try:
        while _held:
            threading.Event().wait(RETRY_SECONDS)
            try:
                flush()
            except Exception:  # noqa: BLE001 - a bug must not end the retries silently
                log.exception("audit: writing held events failed")
            finally:
                connections.close_all()  # this thread's connections
    finally:
        _retrying.clear()
        if _held:  # held while this thread was ending
            _start_retrying()
