"""Restarting what dies: the embedded stack's supervisor policy (issue 26).

A component of the embedded stack that dies (SIGKILL, OOM killer, a crash) is started again
the way the stack first started it instead of the whole stack stopping, at once the first time
and then after a pause that doubles with each restart in the window (1 s up to 60 s: a full disk
makes Redis refuse writes and the workers exit until space is freed; they must outlast it):
the web keeps answering (with a clear error while a dependency is away) and ingestion picks up
where it was (tasks are acknowledged late, claims expire, beat re-sends). A component that dies
``RESTART_LIMIT`` times within ``RESTART_WINDOW`` seconds is crash-looping: the stack stops and
shows its log, as before.
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict, deque

RESTART_LIMIT = int(os.environ.get("RAG_RESTART_LIMIT", "10"))
RESTART_WINDOW = float(os.environ.get("RAG_RESTART_WINDOW", "600"))
MAX_BACKOFF = 60.0
RESTART_PAUSE = 1.0  # let a dying process group finish and its sockets close


class RestartBudget:
    """How many restarts each component has left in the sliding window."""

    def __init__(self, limit: int = RESTART_LIMIT, window: float = RESTART_WINDOW) -> None:
        self.limit, self.window = limit, window
        self.times: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, name: str, now: float) -> deque[float]:
        times = self.times[name]
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def allow(self, name: str, now: float | None = None) -> bool:
        """Whether ``name`` may be restarted at all (False: it is crash-looping, stop)."""
        now = time.monotonic() if now is None else now
        return len(self._recent(name, now)) < self.limit

    def due(self, name: str, now: float | None = None) -> bool:
        """Whether the pause after the last restart of ``name`` is over."""
        now = time.monotonic() if now is None else now
        times = self._recent(name, now)
        return not times or now - times[-1] >= min(MAX_BACKOFF, 2.0 ** (len(times) - 1))

    def restarted(self, name: str, now: float | None = None) -> None:
        self.times[name].append(time.monotonic() if now is None else now)


def kill_group(pid: int) -> None:
    """SIGKILL what is left of a dead child's process group (Celery pool processes, gunicorn
    workers, vLLM's engine core), so the new one does not share the socket or the work."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    time.sleep(RESTART_PAUSE)


def watch(stack, say, log_tail) -> int:
    """The stack's loop (rag_platform.stack.Stack.watch): every second, restart what died."""
    while not stack.stopping.wait(1.0):
        for index, (name, process, log) in enumerate(stack.children):
            if process.poll() is None or not stack.budget.due(name):
                continue
            if not stack.budget.allow(name):
                say(f"{name} exited with code {process.returncode} again ({RESTART_LIMIT} restarts in "
                    f"{RESTART_WINDOW:.0f} s); stopping. Last lines of {log}:")
                print(log_tail(log), flush=True)
                return 1
            say(f"{name} exited with code {process.returncode}; starting it again (log: {log})")
            stack.budget.restarted(name)
            kill_group(process.pid)
            restarted = stack.restarters[name]()
            stack.children[index] = (name, restarted, log)
            if process is stack.vllm:
                stack.vllm = restarted
        if not revive_services(stack, say):
            return 1
    return 0


def revive_services(stack, say) -> bool:
    """PostgreSQL and Redis run outside ``children`` (their own start and stop): the same policy."""
    for name, service in (("PostgreSQL", stack.postgres), ("Redis", stack.redis)):
        if service is None or service.alive() or not stack.budget.due(name):
            continue
        if not stack.budget.allow(name):
            say(f"{name} died again ({RESTART_LIMIT} restarts in {RESTART_WINDOW:.0f} s); stopping.")
            return False
        say(f"{name} died; starting it again")
        stack.budget.restarted(name)
        try:
            if name == "Redis":
                stack.redis = service.restart()
            else:
                service.restart()
            say(f"{name} running again")
        except Exception as error:  # noqa: BLE001 - retried on the next tick, within the budget
            say(f"{name} did not start yet ({error}); trying again")
    return True
