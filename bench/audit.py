"""Audit trail throughput and verification cost (issue 14).

Starts a fresh embedded PostgreSQL in a temporary directory, migrates it as the owner role,
then, as the application role (what web, workers and beat connect as):

* audit writes per second with 1, 8 and 32 concurrent writers: threads of one process, as
  gunicorn's gthread workers run them, each appending single events (its own transaction,
  through ``audit_append``) for ``--seconds``;
* a trail of ``--events`` synthetic events (default 1,000,000: question-shaped payloads of
  ~300 bytes, appended in batches of 1,000 through the same function), then
  - the full verification (``audit_verify_all``: every hash, every signed head, pinned key),
  - a signed head after 1,000 more events: the signer verifies only what is new.

    make bench-audit            # or: .venv/bin/python bench/audit.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup(root: Path):
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from rag_platform.embedded import APP_ROLE, start_postgres

    server = start_postgres(root / "postgres", database="audit_bench")
    key = Ed25519PrivateKey.generate()
    key_file = root / "audit-signing.key"
    key_file.write_text(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption()).hex())
    os.environ.update(
        DATABASE_URL=server.owner_url, RAG_DATA_DIR=str(root / "data"), DJANGO_SETTINGS_MODULE="rag_platform.settings",
        RAG_AUDIT_SIGNER="1", RAG_AUDIT_SIGNING_KEY_FILE=str(key_file),
        RAG_AUDIT_PIN=key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex(),
        RAG_AUDIT_WITNESS_FILE=str(root / "witness" / "audit-witness.jsonl"),
        RAG_AUDIT_MASTER_KEY_FILE=str(root / "audit-master.key"),  # question events are sealed (apps.audit.keys)
    )
    (root / "audit-master.key").write_text(os.urandom(32).hex())
    (root / "audit-master.key").chmod(0o600)
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", verbosity=0)
    connection = connections["default"]
    connection.close()
    connection.settings_dict["USER"] = APP_ROLE  # every later connection: the application role
    return server


def writes_per_second(writers: int, seconds: float) -> float:
    from django.db import connections

    from apps.audit.services import audit_record

    counts = [0] * writers
    stop = threading.Event()
    start_barrier = threading.Barrier(writers + 1)

    def run(index: int) -> None:
        start_barrier.wait()
        while not stop.is_set():
            audit_record(event_type="question.asked", outcome="answered",
                         payload={"question": f"writer {index} question {counts[index]}", "answer": "x" * 200})
            counts[index] += 1
        connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def fill(events: int) -> float:
    from apps.audit.services import audit_record_many

    started = time.perf_counter()
    done = 0
    while done < events:
        n = min(1000, events - done)
        audit_record_many([{"event_type": "question.asked", "outcome": "answered",
                            "payload": {"question": f"synthetic question {done + i}", "answer": "y" * 200,
                                        "collections_searched": [1, 2], "model_sha256": "a" * 64}}
                           for i in range(n)])
        done += n
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--writers", default="1,8,32")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rag-bench-audit-"))
    server = setup(root)
    try:
        from apps.audit.checkpoints import audit_checkpoint_create
        from apps.audit.models import AuditEvent
        from apps.audit.verification import audit_verify_all

        for writers in [int(w) for w in args.writers.split(",")]:
            rate = writes_per_second(writers, args.seconds)
            print(f"writers={writers:<3} {rate:8.0f} audit events/s ({args.seconds:.0f} s)", flush=True)
        existing = AuditEvent.objects.count()
        elapsed = fill(args.events - existing)
        print(f"filled to {args.events:,} events in {elapsed:.0f} s ({(args.events - existing) / elapsed:,.0f} events/s, "
              "batches of 1,000)", flush=True)
        started = time.perf_counter()
        head = audit_checkpoint_create()
        print(f"first signed head over {head.last_sequence:,} events (full verify + sign): {time.perf_counter() - started:.1f} s")
        fill(1000)
        started = time.perf_counter()
        head = audit_checkpoint_create()
        print(f"next signed head after 1,000 more events (verifies only those): {(time.perf_counter() - started) * 1000:.0f} ms")
        started = time.perf_counter()
        report = audit_verify_all()
        took = time.perf_counter() - started
        assert report.ok, report.problems
        print(f"full verification (audit_verify_all, {report.events_checked:,} events, {report.checkpoints_checked} heads): "
              f"{took:.1f} s = {report.events_checked / took:,.0f} events/s", flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
