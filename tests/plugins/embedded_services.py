"""Start the real services the tests talk to, before Django is set up.

pytest-django calls django.setup() while loading the initial conftests, so the database
must exist before that: this plugin (loaded with ``-p`` from pyproject's addopts) starts an
embedded PostgreSQL + pgvector in a temporary directory, unless DATABASE_URL points at one
already (for example a production-like server), and sets RAG_DATA_DIR to a temporary data
directory so tests never touch ./var. It also starts an embedded Redis as the Celery
broker unless CELERY_BROKER_URL is set (set it to test against the system Redis or
RabbitMQ on 127.0.0.1). The converted LLM is shared with the run command's
cache (./var/models) because converting it is the slow part.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rag_platform.process.offline import apply_offline_environment

PROJECT_DIR = Path(__file__).resolve().parents[2]
_state: dict = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    apply_offline_environment()
    root = Path(tempfile.mkdtemp(prefix="rag-tests-"))
    _state["root"] = root
    os.environ["RAG_DATA_DIR"] = str(root / "data")
    os.environ.setdefault("RAG_MODEL_DIR", str(PROJECT_DIR / "var" / "models"))
    # Eager mode: vLLM starts in ~30 s instead of ~90 s, at ~20% less throughput.
    os.environ.setdefault("RAG_VLLM_ENFORCE_EAGER", "1")
    # The end-to-end test starts its own LLM server; nothing may reach a configured one.
    os.environ.pop("LLM_BASE_URL", None)
    if not os.environ.get("DATABASE_URL"):
        from rag_platform.embedded import APP_ROLE, start_postgres

        postgres = start_postgres(root / "postgres")
        _state["postgres"] = postgres
        # pytest-django creates and migrates the test database as the owner; then every
        # test connection switches to the application role (tests/conftest.py).
        os.environ["DATABASE_URL"] = postgres.owner_url
        os.environ["RAG_DATABASE_OWNER_URL"] = postgres.owner_url
        os.environ["RAG_TEST_APP_ROLE"] = APP_ROLE
    # This process plays the signer (it holds a key made for the run, pinned like an operator would).
    if not os.environ.get("RAG_AUDIT_SIGNING_KEY_FILE"):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        key_file = root / "keys" / "audit-signing.key"
        key_file.parent.mkdir(mode=0o700)
        key_file.write_text(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption()).hex())
        key_file.chmod(0o600)
        os.environ["RAG_AUDIT_SIGNING_KEY_FILE"] = str(key_file)
        os.environ["RAG_AUDIT_PIN"] = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    os.environ.setdefault("RAG_AUDIT_SIGNER", "1")
    # The master key that wraps the audit content's data keys (apps.audit.keys), made for the
    # run like an install makes it; the erasure ledger goes next to it.
    if not os.environ.get("RAG_AUDIT_MASTER_KEY_FILE"):
        master_file = root / "keys" / "audit-master.key"
        master_file.parent.mkdir(mode=0o700, exist_ok=True)
        master_file.write_text(os.urandom(32).hex() + "\n")
        master_file.chmod(0o600)
        os.environ["RAG_AUDIT_MASTER_KEY_FILE"] = str(master_file)
    if not os.environ.get("CELERY_BROKER_URL"):
        from rag_platform.embedded import start_redis

        redis = start_redis(root / "redis", persistent=False)
        _state["redis"] = redis
        os.environ["CELERY_BROKER_URL"] = redis.url


def pytest_unconfigure(config):
    redis = _state.pop("redis", None)
    if redis is not None:
        redis.stop()
    postgres = _state.pop("postgres", None)
    if postgres is not None:
        postgres.stop()
    root = _state.pop("root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
