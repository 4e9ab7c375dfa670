"""Writes each connection the egress guard refused to the audit trail, best effort.

The write runs on its own thread (so its own database connection and transaction): the
caller's transaction may roll back, and the caller may even hold the chain lock. The guard
waits a few seconds at most; the in-process counter (rag_platform.process.egress_refusals.blocked_count)
is kept whatever happens here.
"""

from __future__ import annotations

import threading

from django.db import connection

WAIT_SECONDS = 5.0


def record_blocked_attempt(attempt: dict) -> None:
    from apps.audit.context import current_context

    fields = current_context()

    def write() -> None:
        from apps.audit.context import audit_context
        from apps.audit.models import EventType, Outcome
        from apps.audit.services import audit_record

        try:
            with audit_context(fields):
                audit_record(
                    event_type=EventType.EGRESS_BLOCKED,
                    outcome=Outcome.BLOCKED,
                    payload={key: attempt[key] for key in ("kind", "destination", "host", "port", "reason", "code", "pid")},
                )
        except Exception:
            pass
        finally:
            connection.close()

    thread = threading.Thread(target=write, name="egress-audit", daemon=True)
    thread.start()
    thread.join(WAIT_SECONDS)
