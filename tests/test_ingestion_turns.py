"""The pool processes of one worker take turns on the embedding model (apps.ingestion.turns):
real processes and a real flock, no database."""

import os
import signal
import time

import pytest

from apps.ingestion import turns


@pytest.fixture
def worker_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(turns, "_lock_path", None)  # restored after the test
    return turns.worker_started(tmp_path / "run")


def _fork(body) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            body()
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    return pid


def _hold_turn(log_path, hold: float):
    def body():
        with turns.model_turn():
            start = time.monotonic()
            time.sleep(hold)
            end = time.monotonic()
        with open(log_path, "a") as fh:
            fh.write(f"{start} {end}\n")
    return body


def test_pool_processes_never_hold_the_model_at_the_same_time(worker_lock, tmp_path):
    log = tmp_path / "turns.log"
    pids = [_fork(_hold_turn(log, 0.3)) for _ in range(3)]  # forked after worker_started, like pool processes
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, f"two processes encoded at once: {spans}"


def test_a_process_killed_while_holding_the_model_does_not_block_the_others(worker_lock, tmp_path):
    ready = tmp_path / "holding"

    def hold_forever():
        with turns.model_turn():
            ready.touch()
            time.sleep(600)

    pid = _fork(hold_forever)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline, "the child never took the model"
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)  # killed mid-batch, as the crash test does to a worker
    os.waitpid(pid, 0)
    started = time.monotonic()
    with turns.model_turn() as waited:
        assert time.monotonic() - started < 5 and waited < 5


def test_every_worker_on_a_host_shares_one_turn(tmp_path, monkeypatch):
    """A second worker on the same machine (another main process) takes the same turn."""
    monkeypatch.setattr(turns, "_lock_path", None)
    first = turns.worker_started(tmp_path / "run")
    second = turns.worker_started(tmp_path / "run")
    assert first == second and first.exists()


def test_outside_a_worker_a_turn_is_free():
    assert turns._lock_path is None
    with turns.model_turn() as waited:
        assert waited == 0.0


def test_a_pool_process_warms_only_what_its_queues_need(caplog):
    """A parse-only worker (deploy/k8s) does not load the model, an embed-only one not the parsers."""
    import logging

    from apps.ingestion.warming import warm_pool_process

    with caplog.at_level(logging.INFO, logger="apps.ingestion.warming"):
        warm_pool_process(parsers=False, model=True)
        warm_pool_process(parsers=False, model=False)
    lines = [r.getMessage() for r in caplog.records if "warm:" in r.getMessage()]
    assert len(lines) == 1 and "embedding model loaded in" in lines[0] and "parsers" not in lines[0]
