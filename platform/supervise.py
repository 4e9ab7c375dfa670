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
