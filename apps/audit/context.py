"""Who and where, for every audit event written while handling a request.

The middleware (apps.audit.middleware) fills a context variable; ``audit_record`` reads it,
so services keep their signatures. Outside a request (workers, commands) the context names
the process instead.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AuditContext:
    ip_address: str = ""
    user_agent: str = ""
    request_id: str = ""
    # The request's session, read when the event is written: sign-in changes the key.
    session: Any = None
    secret: str = ""

    def as_fields(self) -> dict[str, str]:
        return {
            "session_hash": hash_session_key(getattr(self.session, "session_key", None), self.secret),
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
            "request_id": self.request_id,
        }


_current: contextvars.ContextVar[AuditContext] = contextvars.ContextVar(
    "audit_context", default=AuditContext()
)


def current_context() -> AuditContext:
    return _current.get()


@contextmanager
def audit_context(context: AuditContext) -> Iterator[AuditContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def hash_session_key(session_key: str | None, secret: str) -> str:
    """A stable, non-reversible name for a session: the key itself would let a reader hijack it."""
    if not session_key:
        return ""
    return hashlib.sha256(f"{secret}|{session_key}".encode()).hexdigest()


def process_name() -> str:
    """What kind of process writes the event: the role its entry point set (web, celery
    worker, celery beat, manage.py COMMAND; rag_platform.process.runtime), else the script name."""
    from rag_platform.process.runtime import process_role

    if role := process_role():
        return role
    return (os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python")[:64]
