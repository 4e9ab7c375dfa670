"""The egress guard: refused before any packet, recorded in the trail, endpoints checked at
start-up, and a full session (ingest, ask, export) with zero outbound attempts.

Every test here uses loopback addresses only (127.0.0.2 marked forbidden): even a broken
guard could not send a packet off the machine.
"""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag_platform.process import egress, egress_policy, egress_refusals

PROJECT = Path(__file__).resolve().parents[1]
LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.2", "::1", "localhost"]


@pytest.fixture
def forbidden_listener():
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    yield listener, listener.getsockname()[1]
    listener.close()


def nothing_arrived(listener) -> bool:
    try:
        listener.accept()[0].close()
    except (TimeoutError, OSError):
        return True
    return False


@pytest.mark.allow_hosts(LOOPBACK_HOSTS)
def test_guard_is_installed_and_refuses_before_connecting(forbidden_listener):
    listener, port = forbidden_listener
    assert egress.is_installed()
    before = egress_refusals.blocked_count
    with egress.forbidden("127.0.0.2", port):
        client = socket.socket()
        with pytest.raises(egress_refusals.EgressBlocked):
            client.connect(("127.0.0.2", port))
        client.close()
    assert nothing_arrived(listener)
    assert egress_refusals.blocked_count == before + 1
    attempt = egress_refusals.recent_blocked[-1]
    assert attempt["destination"] == f"127.0.0.2:{port}"
    assert any("test_egress.py" in frame for frame in attempt["code"])


def test_policy_rules():
    policy = egress_policy.Policy(allow=[egress_policy.parse_rule(r) for r in ["10.0.0.0/8", "db.internal:5432", "[fd00::1]:443"]])
    assert policy.connect_allowed("127.0.0.1", 80)[0] and policy.connect_allowed("::1", 80)[0]
    assert policy.connect_allowed("10.2.3.4", 1)[0]
    assert policy.connect_allowed("db.internal", 5432)[0] and not policy.connect_allowed("db.internal", 22)[0]
    assert policy.connect_allowed("fd00::1", 443)[0]
    assert not policy.connect_allowed("192.168.1.5", 443)[0]  # private but not configured
    assert not policy.connect_allowed("8.8.8.8", 53)[0]
    assert not policy.lookup_allowed("huggingface.co")[0] and policy.lookup_allowed("localhost")[0]


def test_endpoint_locality():
    allow = [egress_policy.parse_rule("203.0.113.7")]
    where = lambda url: egress_policy.parse_endpoint("DATABASE_URL", url).locality(allow)  # noqa: E731
    assert where("postgresql://u@/db?host=/tmp/sock") == "unix socket"
    assert where("redis+socket:///tmp/redis.sock") == "unix socket"
    assert where("http://127.0.0.1:8001/v1") == "loopback"
    assert where("postgresql://u:p@10.1.2.3:5432/db") == "private"
    assert where("postgresql://u:p@203.0.113.7:5432/db") == "allowlisted"
    assert where("postgresql://u:p@8.8.8.8:5432/db") == "PUBLIC"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.allow_hosts(LOOPBACK_HOSTS)
def test_blocked_attempt_is_written_to_the_audit_trail(forbidden_listener):
    from apps.audit.models import AuditEvent, EventType, Outcome

    listener, port = forbidden_listener
    with egress.forbidden("127.0.0.2", port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", port), timeout=1)
    assert nothing_arrived(listener)
    event = AuditEvent.objects.get(event_type=EventType.EGRESS_BLOCKED)
    assert event.outcome == Outcome.BLOCKED
    assert event.payload["destination"] == f"127.0.0.2:{port}"
    assert any("test_egress.py" in frame for frame in event.payload["code"])


@pytest.mark.slow
def test_public_endpoint_is_refused_at_start_up_unless_allowed():
    """A public DATABASE_URL fails `manage.py check` (no connection is attempted by it)."""
    env = {"PATH": "/usr/bin:/bin", "RAG_DATA_DIR": str(PROJECT / "var" / "check-test"),
           "DATABASE_URL": "postgresql://u:p@8.8.8.8:5432/db",
           "CELERY_BROKER_URL": "redis+socket:///nonexistent.sock", "LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "rag.E001" in out.stderr, out.stderr
    env["RAG_EGRESS_ALLOW"] = "8.8.8.8:5432"
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
def test_guard_runs_in_every_kind_of_process():
    probe = "from rag_platform.process import egress; print('GUARD', egress.is_installed())"
    manage = subprocess.run([sys.executable, "manage.py", "shell", "-c", probe], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert "GUARD True" in manage.stdout, manage.stderr
    for module in ("rag_platform.celery_app", "rag_platform.wsgi"):
        out = subprocess.run([sys.executable, "-c", f"import {module}; {probe}"], cwd=PROJECT, capture_output=True, text=True, timeout=120)
        assert "GUARD True" in out.stdout, (module, out.stderr)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_full_session_ingest_ask_export_sends_nothing_off_the_machine(client, corpus_admin, member, compliance_officer, collection):
    """Ingest, ask and export, while an independent socket-level observer (a second audit
    hook) records every connection and lookup; none may leave loopback/Unix sockets, and the
    guard's own record must agree."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from apps.audit.models import AuditEvent, EventType
    from apps.corpus.models import Document
    from apps.ingestion.services import document_ingest

    seen: list[tuple] = []

    def observer(event, args):
        if event in ("socket.connect", "socket.sendto", "socket.getaddrinfo"):
            seen.append((event, args[1] if event != "socket.getaddrinfo" else args[0]))

    sys.addaudithook(observer)  # stays for the process; only appends to a local list
    blocked_before = egress_refusals.blocked_count
    started = time.time()
    client.force_login(corpus_admin)
    upload = SimpleUploadedFile("travel.txt", b"Travel above 500 EUR needs the head of unit's approval.\n")
    response = client.post(reverse("ingestion:document_upload", args=[collection.id]), {"files": [upload]}, follow=True)
    assert response.status_code == 200, response.content[:2000]
    document_ingest(document_id=Document.objects.get(title="travel.txt").id)
    client.force_login(member)
    client.post(reverse("answering:ask"), {"question": "Who approves travel above 500 EUR?"})
    client.force_login(compliance_officer)
    assert client.get(reverse("audit:event_export")).status_code == 200
    seen_during = list(seen)
    seen.clear()

    def leaves(destination) -> bool:
        if isinstance(destination, tuple):
            return not egress_policy.is_loopback(str(destination[0]))
        return isinstance(destination, str) and destination != "" and not destination.startswith("/") and not egress_policy.is_loopback(destination)

    assert [s for s in seen_during if leaves(s[1])] == []
    assert egress_refusals.blocked_count == blocked_before
    assert not AuditEvent.objects.filter(event_type=EventType.EGRESS_BLOCKED).exists()
    assert AuditEvent.objects.filter(event_type=EventType.QUESTION_ASKED).exists()
    assert time.time() - started < 300
