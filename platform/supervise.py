"""Restarting what dies: the embedded stack's supervisor policy (issue 26).

A component of the embedded stack that dies (SIGKILL, OOM killer, a crash) is started again
the way the stack first started it, after a short pause, instead of the whole stack stopping:
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

RESTART_LIMIT = int(os.environ.get("RAG_RESTART_LIMIT", "5"))
RESTART_WINDOW = float(os.environ.get("RAG_RESTART_WINDOW", "300"))
RESTART_PAUSE = 1.0  # let a dying process group finish and its sockets close


class RestartBudget:
    """How many restarts each component has left in the sliding window."""

    def __init__(self, limit: int = RESTART_LIMIT, window: float = RESTART_WINDOW) -> None:
        self.limit, self.window = limit, window
        self.times: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, name: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        times = self.times[name]
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True


def kill_group(pid: int) -> None:
    """SIGKILL what is left of a dead child's process group (Celery pool processes, gunicorn
    workers, vLLM's engine core), so the new one does not share the socket or the work."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    time.sleep(RESTART_PAUSE)
