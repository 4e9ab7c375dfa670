"""The pool processes of one Celery worker take turns on the embedding model.

The encoder already keeps every core busy (ONNX Runtime runs one thread per core), so two
processes encoding at once only slow each other down, while one process encoding as another
parses the next batch (one core, in a sandboxed child) or stores the last one (mostly
PostgreSQL) puts the cores that work would leave idle to use. So the worker runs two pool
processes (``RAG_WORKERS``: rag_platform.process.runtime.pool_processes, the stack's default)
and they take the model in turns.

The turn is an ``flock`` on one file per host under ``<data dir>/run/`` that the worker's main
process makes at start-up (``worker_started``, from the ``worker_init`` signal) and its forked
pool processes inherit the path of. Every worker on the host shares it, so a second worker
started on the same machine adds parsing capacity without two encoders fighting over the
cores; the host name in the file name keeps hosts that share a data directory (NFS) apart.
The kernel releases the lock when its holder dies, so a pool process killed mid-batch
(SIGKILL, out of memory) never leaves the others waiting; the file stays (0 bytes), since
another worker may hold it. Outside a worker (tests, ``manage.py ingest --inline``) there is
no file and a turn is free.
"""

from __future__ import annotations

import fcntl
import socket
import time
from contextlib import contextmanager
from pathlib import Path

_lock_path: Path | None = None


def worker_started(run_dir: Path) -> Path:
    """Called in the worker's main process before the pool forks."""
    global _lock_path
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"encoder-turn-{socket.gethostname()}.lock"
    path.touch()
    _lock_path = path
    return path


@contextmanager
def model_turn(*, wait: bool = True):
    """Hold the model for this block; yields the seconds spent waiting for the turn, or
    None (``wait=False``) when another process holds it (the block then runs without it)."""
    if _lock_path is None:
        yield 0.0
        return
    started = time.monotonic()
    # Each process opens the file itself: flock locks belong to an open file description,
    # which a descriptor inherited through fork would share with the other processes.
    with _lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        waited = time.monotonic() - started
        try:
            yield waited
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
