"""pandoc stays sandboxed: an ODT and an RTF that link an image on a loopback address
marked forbidden are ingested without a single connection to it, and the setting that would
drop the sandbox is refused at start-up and in the parse child.

pandoc is a subprocess: the egress guard (a Python audit hook) cannot see it, so a listening
socket on 127.0.0.2 records whatever connects. The control test shows the ODT makes pandoc
connect when it runs without ``--sandbox``.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from apps.corpus.models import Chunk, Document
from apps.ingestion.parsing import OfflineViolation, parse_and_chunk
from apps.ingestion.services import document_ingest, document_upload
from rag_platform.process import egress
from tests import files

PROJECT = Path(__file__).resolve().parents[1]
LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.2", "::1", "localhost"]


class Recorder:
    """A listening socket on 127.0.0.2 that accepts and records every connection."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.2", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.2:{self.port}/logo.png"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.requests.append(conn.recv(200) or b"(connected)")
                except OSError:
                    self.requests.append(b"(connected)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def forbidden_image_host():
    recorder = Recorder()
    with egress.forbidden("127.0.0.2", recorder.port):
        yield recorder
    recorder.close()


@pytest.mark.allow_hosts(LOOPBACK_HOSTS)
def test_control_pandoc_without_its_sandbox_fetches_the_linked_image(tmp_path, forbidden_image_host):
    import pypandoc

    source = tmp_path / "linked.odt"
    source.write_bytes(files.odt_linking_image(forbidden_image_host.url))
    pypandoc.convert_file(str(source), "docx", format="odt", outputfile=str(tmp_path / "out.docx"))
    assert any(b"GET /logo.png" in r for r in forbidden_image_host.requests), forbidden_image_host.requests


@pytest.mark.django_db
@pytest.mark.allow_hosts(LOOPBACK_HOSTS)
@pytest.mark.parametrize(("name", "build", "fact"), [
    ("linked.odt", files.odt_linking_image, "archived after ten years"),
    ("linked.rtf", files.rtf_linking_image, "return their badge at reception"),
])
def test_ingesting_a_document_that_links_an_image_makes_no_connection(
        collection, corpus_admin, forbidden_image_host, name, build, fact):
    data = build(forbidden_image_host.url)
    upload = document_upload(collection=collection, uploaded_by=corpus_admin, name=name,
                             content=io.BytesIO(data), size=len(data))
    document = document_ingest(document_id=upload.document.id)
    assert document.status == Document.Status.INDEXED, document.failure_reason
    assert any(fact in " ".join(c.text.split()) for c in Chunk.objects.filter(document=document))
    assert forbidden_image_host.requests == []


@pytest.mark.allow_hosts(LOOPBACK_HOSTS)
def test_parse_child_refuses_pandoc_without_its_sandbox(tmp_path, monkeypatch, forbidden_image_host):
    monkeypatch.setenv("ALLOW_PANDOC_NO_SANDBOX", "true")
    for name, build in (("linked.odt", files.odt_linking_image), ("linked.rtf", files.rtf_linking_image)):
        path = tmp_path / name
        path.write_bytes(build(forbidden_image_host.url))
        with pytest.raises(OfflineViolation, match="ALLOW_PANDOC_NO_SANDBOX"):
            parse_and_chunk(path, name)
    assert forbidden_image_host.requests == []


@pytest.mark.slow
def test_start_up_check_refuses_allow_pandoc_no_sandbox(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from apps.ingestion.apps import refuse_unsandboxed_pandoc_in_servers
    from apps.ingestion.checks import check_pandoc_sandbox

    monkeypatch.delenv("ALLOW_PANDOC_NO_SANDBOX", raising=False)
    assert check_pandoc_sandbox() == []
    monkeypatch.setenv("ALLOW_PANDOC_NO_SANDBOX", "true")
    assert [e.id for e in check_pandoc_sandbox()] == ["rag.E020"]
    from rag_platform.process import runtime

    # The role a Celery worker's start names (not whatever an earlier test left in this process).
    monkeypatch.setattr(runtime, "_process_role", "celery worker")
    with pytest.raises(ImproperlyConfigured, match="rag.E020"):
        refuse_unsandboxed_pandoc_in_servers()

    env = {"PATH": "/usr/bin:/bin", "RAG_DATA_DIR": str(PROJECT / "var" / "check-test"),
           "DATABASE_URL": "postgresql://u:p@127.0.0.1:9/db", "CELERY_BROKER_URL": "redis+socket:///nonexistent.sock",
           "LLM_BASE_URL": "http://127.0.0.1:9/v1", "ALLOW_PANDOC_NO_SANDBOX": "true"}
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "rag.E020" in out.stderr, out.stderr
    env.pop("ALLOW_PANDOC_NO_SANDBOX")
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
