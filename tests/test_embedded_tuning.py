"""The embedded PostgreSQL gets memory for its buffer cache (search latency depends on it)."""

import pytest
from django.db import connection

from rag_platform.embedded import postgres_memory_settings

GIB = 1024**3


def test_memory_settings_scale_with_the_machine(monkeypatch):
    monkeypatch.delenv("RAG_PG_SHARED_BUFFERS_MB", raising=False)
    assert postgres_memory_settings(2 * GIB)["shared_buffers"] == "512MB"  # a quarter
    assert postgres_memory_settings(24 * GIB)["shared_buffers"] == "2048MB"  # capped
    assert postgres_memory_settings(256 * 1024**2)["shared_buffers"] == "128MB"  # PostgreSQL's own floor
    monkeypatch.setenv("RAG_PG_SHARED_BUFFERS_MB", "4096")
    assert postgres_memory_settings(24 * GIB)["shared_buffers"] == "4096MB"


@pytest.mark.django_db
def test_the_embedded_server_runs_with_them(monkeypatch):
    if not str(connection.settings_dict.get("HOST") or "").startswith("/"):
        pytest.skip("the tests run against an external PostgreSQL (DATABASE_URL), sized by its operator")
    monkeypatch.delenv("RAG_PG_SHARED_BUFFERS_MB", raising=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'")
        megabytes = cursor.fetchone()[0]
    assert f"{megabytes}MB" == postgres_memory_settings()["shared_buffers"]
