"""Start the real services the tests talk to, before Django is set up.

pytest-django calls django.setup() while loading the initial conftests, so the database
must exist before that: this plugin (loaded with ``-p`` from pyproject's addopts) starts an
embedded PostgreSQL + pgvector in a temporary directory, unless DATABASE_URL points at one
already (for example a production-like server), and sets RAG_DATA_DIR to a temporary data
directory so tests never touch ./var. The converted LLM is shared with the run command's
cache (./var/models) because converting it is the slow part.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rag_platform.privacy import apply_offline_environment

PROJECT_DIR = Path(__file__).resolve().parents[2]
_state: dict = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    apply_offline_environment()
    root = Path(tempfile.mkdtemp(prefix="rag-tests-"))
    _state["root"] = root
    os.environ["RAG_DATA_DIR"] = str(root / "data")
    os.environ.setdefault("RAG_MODEL_DIR", str(PROJECT_DIR / "var" / "models"))
    for name in ("CELERY_BROKER_URL", "LLM_BASE_URL"):
        # Tests start their own broker and LLM where they need them.
        os.environ.pop(name, None)
    if not os.environ.get("DATABASE_URL"):
        from rag_platform.embedded import start_postgres

        postgres = start_postgres(root / "postgres")
        _state["postgres"] = postgres
        os.environ["DATABASE_URL"] = postgres.url


def pytest_unconfigure(config):
    postgres = _state.pop("postgres", None)
    if postgres is not None:
        postgres.stop()
    root = _state.pop("root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
