"""Every process sends its tasks to rag_platform's broker and queues (issue 13).

The pytest process itself imports the Celery app, which hid the bug: these tests start the
processes a user and an operator start (a fresh ``manage.py`` that finds the stack through
``var/run/stack.json`` only, gunicorn, ``python -m celery``, uvicorn) and look at the real
broker and the real worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Document
from apps.ingestion import queue
from apps.ingestion.housekeeping import ingestion_housekeep
from tests.servers import PROJECT, database_url, stop_process_group, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _bare_env(**extra: str) -> dict[str, str]:
    """A second terminal: no broker, database or LLM variable (only where the data lives)."""
    return {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin",
            "RAG_DATA_DIR": os.environ["RAG_DATA_DIR"], **extra}


@pytest.fixture
def stack_json():
    """Publish endpoints the way a running stack does (RAG_DATA_DIR/run/stack.json)."""
    from rag_platform.process.runtime import clear_stack_endpoints, stack_file, write_stack_endpoints

    assert not stack_file().exists()

    def publish(**endpoints: str) -> None:
        write_stack_endpoints({"DATABASE_URL": database_url(connection.settings_dict), **endpoints})

    yield publish
    clear_stack_endpoints()


def _manage(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT / "manage.py"), *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_manage_py_ingest_from_a_second_terminal_reaches_the_running_worker(stack_json, worker, tmp_path):
    """The README's bulk import: `create_collection`, then `ingest FOLDER --wait`, from a shell
    with no broker variable: the command must find the broker in stack.json and the worker
    must index the files (it used to wait forever: the tasks went to amqp://localhost)."""
    stack_json(CELERY_BROKER_URL=os.environ["CELERY_BROKER_URL"])
    folder = tmp_path / "heldout"
    folder.mkdir()
    for i in range(3):
        (folder / f"policy-{i}.txt").write_text(f"Policy {i}: visitors sign in at reception and wear a badge.\n")
    env = _bare_env()
    created = _manage("create_collection", "Heldout", "--readers", "staff", env=env)
    assert created.returncode == 0, created.stderr
    out = _manage("ingest", str(folder), "--collection", "Heldout", "--wait", "--timeout", "180", env=env)
    assert out.returncode == 0, out.stdout + out.stderr + worker.read_text()[-3000:]
    assert out.stdout.count("indexed") == 3, out.stdout
    docs = Document.objects.filter(collection__name="Heldout")
    assert docs.count() == 3 and all(d.status == Document.Status.INDEXED for d in docs)
    # Each process named its role in the trail (explicit, not guessed from argv).
    processes = {e.event_type: e.process for e in AuditEvent.objects.filter(payload__document_id__in=[d.id for d in docs])}
    assert processes[EventType.DOCUMENT_UPLOADED] == "manage.py ingest"
    assert processes[EventType.DOCUMENT_INDEXED] == "celery worker"


def test_a_send_to_an_unreachable_broker_waits_with_a_note_and_housekeeping_sends_it(stack_json, worker, tmp_path):
    """The broker in stack.json is down: the document stays queued with the note, and the
    housekeeping task sends it to the (now reachable) broker, where the worker indexes it."""
    stack_json(CELERY_BROKER_URL=f"redis+socket://{tmp_path}/no-redis-here.sock")
    env = _bare_env()
    assert _manage("create_collection", "Outage", env=env).returncode == 0
    note = tmp_path / "note.txt"
    note.write_text("During an outage the duty manager approves payments by phone.\n")
    out = _manage("ingest", str(note), "--collection", "Outage", env=env)
    assert out.returncode == 0, out.stderr
    document = Document.objects.get(collection__name="Outage")
    assert document.status == Document.Status.QUEUED
    assert document.failure_reason.startswith(queue.WAITING_NOTE), document.failure_reason

    # This process uses the reachable broker (the tests' own), as the beat task would.
    assert ingestion_housekeep()["tasks_sent"] >= 1
    document.refresh_from_db()
    assert not document.failure_reason.startswith(queue.WAITING_NOTE)
    wait_until(lambda: Document.objects.get(id=document.id).status == Document.Status.INDEXED,
               timeout=180, what="the worker to index the re-sent document", log=worker)


def _fresh_redis(tmp_path: Path):
    from rag_platform.embedded import start_redis

    return start_redis(tmp_path / "redis", persistent=False)


def test_an_upload_through_the_web_process_lands_on_the_parse_queue(tmp_path, corpus_admin, collection):
    """gunicorn as deployed (the broker in its environment): an upload before any /readyz
    probe must be routed to "parse", not Celery's default "celery" queue."""
    import httpx
    import redis as redis_client

    from apps.api.services import api_token_create
    from rag_platform.embedded import child_environment, free_loopback_port

    broker = _fresh_redis(tmp_path)
    port = free_loopback_port()
    log = tmp_path / "web.log"
    env = child_environment(DATABASE_URL=database_url(connection.settings_dict), CELERY_BROKER_URL=broker.url)
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "rag_platform.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "2"],
        cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        token = api_token_create(user=corpus_admin, name="routing test", days=30, scopes=("ingest",)).secret
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30) as client:
            wait_until(lambda: _healthy(client), timeout=120, what="gunicorn", log=log)
            response = client.post(f"/api/v1/collections/{collection.id}/documents",
                                   headers={"Authorization": f"Bearer {token}"},
                                   files={"file": ("visitors.txt", b"Visitors wear a badge at all times.\n", "text/plain")})
        assert response.status_code == 202, response.text
        store = redis_client.Redis(unix_socket_path=str(broker.socket_path))
        wait_until(lambda: store.llen("parse") + store.llen("celery") > 0, timeout=30, what="a message on the broker")
        assert store.llen("parse") == 1 and store.llen("celery") == 0, (store.llen("parse"), store.llen("celery"))
        message = json.loads(store.lindex("parse", 0))
        assert message["headers"]["task"] == queue.PARSE_TASK
    finally:
        stop_process_group(web)
        broker.stop()


def _healthy(client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except Exception:  # noqa: BLE001 - not listening yet
        return False


@pytest.mark.parametrize("entry_point", ["celery worker", "uvicorn"])
def test_servers_refuse_a_public_endpoint_at_start_up(entry_point, tmp_path):
    """`python -m celery ... worker` (how the stack and the tests start workers) and uvicorn
    used to skip the refusal: the role was guessed from argv ("__main__.py"). No connection
    is attempted: the check reads the configured address only."""
    from rag_platform.embedded import free_loopback_port

    broker = _fresh_redis(tmp_path)
    env = _bare_env(DATABASE_URL=database_url(connection.settings_dict), CELERY_BROKER_URL=broker.url,
                    LLM_BASE_URL="http://8.8.8.8:8000/v1")
    if entry_point == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", "rag_platform.asgi:application", "--host", "127.0.0.1",
                   "--port", str(free_loopback_port())]
    else:
        command = [sys.executable, "-m", "celery", "-A", "rag_platform.celery_app", "worker", "--pool", "solo",
                   "--without-gossip", "--without-mingle", "--queues", "nothing-to-consume"]
    process = subprocess.Popen(command, cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        running = process.poll() is None
    finally:
        stop_process_group(process)
        broker.stop()
    output = process.stdout.read()
    assert not running, f"{entry_point} started with a public LLM_BASE_URL:\n{output[-2000:]}"
    assert process.returncode != 0 and "rag.E003" in output, output[-2000:]
