"""Shared fixtures: the three roles, a collection with an owner, a member and an outsider."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests.factories import CollectionFactory, UserFactory


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After the owner created and migrated the test database, every test connects as the
    application role (RAG_TEST_APP_ROLE, set by tests/plugins/embedded_services.py), so
    the suite runs with the privileges web, workers and beat have in production."""
    import os

    from django.db import connections

    role = os.environ.get("RAG_TEST_APP_ROLE")
    connection = connections["default"]
    owner = {k: connection.settings_dict.get(k) for k in ("USER", "PASSWORD")}
    if role:
        connection.close()
        connection.settings_dict.update(USER=role, PASSWORD="")
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT session_user")
            assert cursor.fetchone()[0] == role
    yield
    if role:  # the owner drops the test database
        connection.close()
        connection.settings_dict.update(owner)


@pytest.fixture(autouse=True)
def _audit_witness_per_test(settings, tmp_path):
    """Each test's signed heads go to its own checkpoint folder and witness file: the trail
    starts afresh per test, its witness must too."""
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "audit-checkpoints")
    settings.AUDIT_WITNESS_FILE = str(tmp_path / "witness" / "audit-witness.jsonl")
    # Likewise the erasure ledger (apps.audit.keys): a test's erasures are not another's.
    settings.AUDIT_ERASURE_LEDGER = str(tmp_path / "keys" / "audit-erasures.jsonl")


@pytest.fixture
def staff_group(db) -> Group:
    return Group.objects.get(name="staff")


@pytest.fixture
def corpus_admin(db):
    return UserFactory(username="admin", groups=["corpus_admin"])


@pytest.fixture
def member(db):
    return UserFactory(username="member", groups=["staff"])


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider", groups=["staff"])


@pytest.fixture
def compliance_officer(db):
    return UserFactory(username="compliance", groups=["compliance_officer"])


@pytest.fixture
def collection(db, corpus_admin, member):
    """A collection created by the corpus admin, readable by ``member`` only."""
    collection = CollectionFactory(name="Finance policies", created_by=corpus_admin)
    collection.reader_users.add(member)
    return collection


@pytest.fixture
def worker(tmp_path):
    """A real Celery worker process on the test database and broker; yields its log path."""
    import os

    from django.db import connection

    from tests.servers import database_url, start_worker, stop_process_group

    log = tmp_path / "worker.log"
    process = start_worker(database=database_url(connection.settings_dict), broker=os.environ["CELERY_BROKER_URL"], log_path=log)
    yield log
    stop_process_group(process)


@pytest.fixture(scope="session")
def vllm_base_url(tmp_path_factory):
    """One real vLLM server (packaged model, eager mode) shared by every slow test that needs it."""
    import os
    from pathlib import Path

    from rag_platform import llm_model
    from rag_platform.process import vllm_server
    from rag_platform.embedded import free_loopback_port

    model = llm_model.prepare_model(Path(os.environ["RAG_MODEL_DIR"]))
    port = free_loopback_port()
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    process = vllm_server.start_vllm_server(model, port=port, log_path=log)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        vllm_server.wait_for_llm(base_url, timeout=900, process=process, log_path=log)
        yield base_url, model
    finally:
        vllm_server.stop_vllm_server(process)


@pytest.fixture
def llm(settings, vllm_base_url):
    """Point the settings at the shared vLLM server; yields the prepared model."""
    base_url, model = vllm_base_url
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_MODEL_SHA256 = base_url, model.served_name, model.sha256
    return model
