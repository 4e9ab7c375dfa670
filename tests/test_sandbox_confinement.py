"""Security review 2026-12-07, M1: what a hostile upload can reach from the sandbox children.

Real forked children on the real embedded PostgreSQL: a child cannot read a secret in the
keys folder, cannot connect to the database's Unix socket, cannot read another collection's
stored file, and a double-forked grandchild does not outlive the call. Each of these passed
(for the attacker) before apps.ingestion.confinement."""

from __future__ import annotations

import glob
import os
import socket
import time
from pathlib import Path

import pytest
from django.conf import settings

from apps.ingestion.sandbox import run_limited
from apps.ingestion.sandbox_wire import ChildRaised

LIMITS = {"memory_bytes": 256 * 1024 * 1024, "cpu_seconds": 10, "wall_seconds": 20}


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return "read: " + fh.read()
    except OSError as error:
        return f"refused: {error.strerror}"


def _connect(path: str) -> str:
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return "connected"
    except OSError as error:
        return f"refused: {error.strerror}"


def _double_fork() -> int:
    read_fd, write_fd = os.pipe()
    if os.fork() == 0:
        if os.fork() == 0:  # the grandchild tries to leave the process group, then waits
            try:
                os.setsid()
            except OSError:
                pass
            time.sleep(60)
            os._exit(0)
        os._exit(0)
    os.close(write_fd)
    time.sleep(0.3)
    os.close(read_fd)
    # The grandchild is the newest process in this child's session or group.
    me = os.getpid()
    group = [int(p) for p in os.listdir("/proc") if p.isdigit() and _group_of(int(p)) == me and int(p) != me]
    return max(group) if group else -1


def _group_of(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


def test_machine_confines_the_children():
    from apps.ingestion.sandbox import isolation

    assert not isolation().startswith("weak"), isolation()


def test_child_cannot_read_a_secret_in_the_keys_folder():
    keys = Path(settings.AUDIT_MASTER_KEY_FILE).parent
    keys.mkdir(parents=True, exist_ok=True)
    secret = keys / "probe-secret.key"
    secret.write_text("top secret")
    try:
        assert _read(str(secret)) == "read: top secret"  # the worker itself can
        value = run_limited(_read, str(secret), **LIMITS).value
        assert value.startswith("refused"), value
    finally:
        secret.unlink()


@pytest.mark.django_db
def test_child_cannot_connect_to_the_embedded_postgresql_socket():
    host = settings.DATABASES["default"]["HOST"]
    sockets = glob.glob(os.path.join(host, ".s.PGSQL.*"))
    sockets = [s for s in sockets if not s.endswith(".lock")]
    assert sockets, f"no PostgreSQL socket under {host}"
    assert _connect(sockets[0]) == "connected"  # the worker itself can
    value = run_limited(_connect, sockets[0], **LIMITS).value
    assert value.startswith("refused"), value


def test_child_cannot_read_another_collections_stored_file():
    own = Path(settings.MEDIA_ROOT) / "collection-1" / "ab" / "abcd"
    other = Path(settings.MEDIA_ROOT) / "collection-2" / "cd" / "cdef"
    for path, text in ((own, "mine"), (other, "theirs")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    value = run_limited(_read, str(own), **LIMITS, readable=[str(own)]).value
    assert value == "read: mine"
    value = run_limited(_read, str(other), **LIMITS, readable=[str(own)]).value
    assert value.startswith("refused"), value


def test_double_forked_grandchild_does_not_survive():
    grandchild = run_limited(_double_fork, **LIMITS).value
    assert grandchild > 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.1)
    os.kill(grandchild, 9)
    pytest.fail("the grandchild outlived the sandbox call")


def _raise_long_message():
    raise ValueError("\x1b[31m" + "x" * 10000 + "\u202e")


def test_child_messages_are_bounded_and_stripped():
    with pytest.raises(ChildRaised) as info:
        run_limited(_raise_long_message, **LIMITS)
    message = info.value.message
    assert info.value.type_name == "ValueError"
    assert len(message) <= 500 and "\x1b" not in message and "\u202e" not in message
    from apps.ingestion.sandbox_wire import bounded

    assert bounded("a\x00b") == "a b"


@pytest.mark.django_db
def test_worker_role_reads_no_sessions():
    """Review, "checked and sound": rag_app (and so every parse worker) read django_session.
    The workers' own role has the application role's grants without the session table."""
    import psycopg
    from django.db import connection

    from rag_platform.embedded import WORKER_ROLE

    assert settings.DATABASE_WORKER_ROLE == WORKER_ROLE
    params = connection.get_connection_params()
    with psycopg.connect(host=params["host"], port=params.get("port"), dbname=params["dbname"], user=WORKER_ROLE,
                         autocommit=True) as worker:
        assert worker.execute("SELECT session_user").fetchone()[0] == WORKER_ROLE
        worker.execute("SELECT count(*) FROM corpus_document").fetchone()
        for table in ("django_session", "api_apitoken"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                worker.execute(f"SELECT count(*) FROM {table}").fetchone()
