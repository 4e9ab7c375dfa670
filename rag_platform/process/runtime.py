"""Where the platform keeps its data, and how processes find the embedded stack.

Everything the platform stores (database cluster, broker journal, uploaded files, converted
model, secret key, audit checkpoints) lives under one directory, ``RAG_DATA_DIR``
(default ``./var`` next to manage.py), so a user can see it and back it up.

When the embedded stack runs, it writes the endpoints it started to ``run/stack.json``;
processes started later (``manage.py ask`` in another terminal) read them from there.
Explicit environment variables always win.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


# Pool processes of the stack's Celery worker: one encodes while the other parses or stores
# (apps.ingestion.turns). Measured in docs/benchmarks.md (bench/ingest.py --concurrency 1,2).
POOL_PROCESSES = 2


def pool_processes() -> int:
    """``RAG_WORKERS``, else POOL_PROCESSES: the stack's --workers default, read before Django."""
    return int(os.environ.get("RAG_WORKERS", POOL_PROCESSES))


def data_dir() -> Path:
    path = Path(os.environ.get("RAG_DATA_DIR") or PROJECT_DIR / "var").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def stack_file() -> Path:
    return data_dir() / "run" / "stack.json"


def read_stack_endpoints() -> dict[str, str]:
    """Endpoints published by a running embedded stack, or {} if none is running."""
    try:
        return json.loads(stack_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write_stack_endpoints(endpoints: dict[str, str]) -> None:
    path = stack_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(endpoints, indent=2))
    tmp.replace(path)


def clear_stack_endpoints() -> None:
    stack_file().unlink(missing_ok=True)


def endpoint(name: str) -> str | None:
    """An endpoint from the environment (``NAME`` or a ``NAME_FILE`` secret, since URLs
    carry passwords), else from the running embedded stack."""
    return secret_from_env_or_file(name) or read_stack_endpoints().get(name)


def secret_from_env_or_file(name: str) -> str | None:
    """``NAME`` or the contents of the file named by ``NAME_FILE`` (Docker/K8s secrets)."""
    if value := os.environ.get(name):
        return value
    if file_name := os.environ.get(f"{name}_FILE"):
        return Path(file_name).read_text().strip()
    return None


def local_secret_key() -> str:
    """A per-installation secret key, created once under the data directory (mode 0600)."""
    path = data_dir() / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# -- process role ---------------------------------------------------------------------------
# Set explicitly by each entry point (manage.py, the Celery worker and beat, WSGI, ASGI) so
# that start-up checks and audit events do not have to guess from sys.argv (which reads
# ``__main__.py`` under ``python -m celery`` and nothing useful under uvicorn). Forked
# children (the parse sandbox, Celery's pool processes) inherit it.
_process_role = ""

WEB_ROLES = ("web", "web asgi")
SERVER_ROLES = (*WEB_ROLES, "celery worker", "celery beat")


def set_process_role(role: str) -> None:
    global _process_role
    _process_role = role[:64]


def process_role() -> str:
    """The role this process was started in, or "" when no entry point set one."""
    return _process_role
