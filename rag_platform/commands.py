"""The command lines of the processes the stack runs, one definition each (the stack and the
test suite's workers start the same Celery worker)."""

from __future__ import annotations

import sys
from pathlib import Path


def worker_command(*, concurrency: int, queues: str, hostname: str, loglevel: str = "INFO") -> list[str]:
    """A Celery worker of rag_platform's app on ``queues`` (comma-separated), no gossip or
    mingle (the workers share nothing at start)."""
    return [
        sys.executable, "-m", "celery", "-A", "rag_platform.celery_app", "worker",
        "--loglevel", loglevel, "--concurrency", str(concurrency), "--hostname", hostname,
        "--without-gossip", "--without-mingle", "--queues", queues,
    ]


def beat_command(*, schedule_file: Path, loglevel: str = "INFO") -> list[str]:
    """Celery beat, sending CELERY_BEAT_SCHEDULE; ``schedule_file`` keeps its last run times."""
    return [
        sys.executable, "-m", "celery", "-A", "rag_platform.celery_app", "beat",
        "--loglevel", loglevel, "--schedule", str(schedule_file),
    ]


def web_command(*, port: int) -> list[str]:
    """gunicorn on 127.0.0.1:``port``, threads (answers stream for minutes). An idle connection
    is kept 75 s, not gunicorn's 2 s: a client that asks again after a few seconds otherwise
    races the server closing its connection and sees a reset before its request is read."""
    return [
        sys.executable, "-m", "gunicorn", "rag_platform.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--workers", "1",
        "--threads", "64", "--timeout", "300", "--keep-alive", "75", "--access-logfile", "-",
    ]
