"""Real server processes for the slow tests: a Celery worker and the vLLM server."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

PROJECT = Path(__file__).resolve().parents[1]


def database_url(settings_dict: dict) -> str:
    """A URL for the database Django is connected to (the test database during tests)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = quote(settings_dict.get("HOST") or "", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{settings_dict['NAME']}"


def start_worker(*, database: str, broker: str, log_path: Path, concurrency: int | None = None,
                 queues: str = "parse,embed,celery", hostname: str = "", **extra_env: str) -> subprocess.Popen:
    """A Celery worker as the stack starts it: by default with its pool processes (two, taking
    turns on the model: apps.ingestion.turns)."""
    from rag_platform.process.runtime import pool_processes
    from rag_platform.commands import worker_command
    from rag_platform.embedded import child_environment

    concurrency = pool_processes() if concurrency is None else concurrency

    env = child_environment(DATABASE_URL=database, CELERY_BROKER_URL=broker, **extra_env)
    if "RAG_AUDIT_SIGNER" not in extra_env:  # the suite's own process plays the signer; a worker is not one
        env.pop("RAG_AUDIT_SIGNER", None)
    handle = log_path.open("ab")
    return subprocess.Popen(
        worker_command(concurrency=concurrency, queues=queues, hostname=hostname or f"test{os.getpid()}@%h"),
        cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_until(predicate, *, timeout: float, interval: float = 0.5, what: str = "condition", log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")
