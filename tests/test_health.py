"""Liveness and readiness, as probes see them: real database, real broker."""

import socket

import pytest
from django.urls import reverse

from rag_platform.embedded import free_loopback_port


def test_liveness_touches_nothing(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200 and response.json() == {"status": "alive"}


@pytest.mark.django_db
def test_ready_when_database_broker_and_guard_answer(client, settings):
    # A dead loopback port, not the default 8001: a running stack's vLLM listens there.
    settings.LLM_BASE_URL = f"http://127.0.0.1:{free_loopback_port()}/v1"
    body = client.get(reverse("readyz")).json()
    assert body["status"] == "ready", body
    assert body["checks"]["database"]["detail"].startswith("pgvector ")
    assert body["checks"]["egress_guard"]["ok"]
    assert not body["checks"]["llm"]["ok"]  # no LLM runs here: reported, not blocking


@pytest.mark.django_db
def test_not_ready_when_the_llm_is_required_and_down(client, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
    response = client.get(reverse("readyz"), {"require": "llm"})
    assert response.status_code == 503 and response.json()["status"] == "not ready"


@pytest.mark.django_db
def test_not_ready_when_the_broker_is_down(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path / 'no-such.sock'}"
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    assert not response.json()["checks"]["broker"]["ok"]
