"""What the egress guard keeps of a refusal: the exception the caller gets, a per-process count
and the recent attempts (the attestation report shows them), and a hand-off to the recorder
apps.audit installs, which writes each one to the audit trail best effort.

The count is read as ``egress_refusals.blocked_count`` (an int rebound on every refusal: read
it through the module, not with ``from ... import``).
"""

from __future__ import annotations

import collections
import os
import threading
import time
import traceback
from collections.abc import Callable


class EgressBlocked(ConnectionRefusedError):
    """An outbound connection the operator did not allow; refused before it was made."""


_lock = threading.Lock()
_local = threading.local()
blocked_count = 0
recent_blocked: collections.deque[dict] = collections.deque(maxlen=200)
_recorder: Callable[[dict], None] | None = None
# The guard's own frames: the attempt names the code that asked for the connection.
_GUARD_FILES = ("/socket.py", "/ssl.py", "/egress.py", "/egress_policy.py", "/egress_refusals.py")


def set_recorder(recorder: Callable[[dict], None] | None) -> None:
    global _recorder
    _recorder = recorder


def _caller() -> list[str]:
    frames = traceback.extract_stack()[:-3]
    useful = [f for f in frames if not f.filename.endswith(_GUARD_FILES)]
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in useful[-6:]]


def refuse(kind: str, host: str, port: int | None, reason: str) -> None:
    """Count and record the attempt, then raise :class:`EgressBlocked`."""
    global blocked_count
    attempt = {
        "kind": kind,
        "destination": f"{host}:{port}" if port is not None else host,
        "host": host,
        "port": port,
        "reason": reason,
        "code": _caller(),
        "pid": os.getpid(),
        "time": time.time(),
    }
    with _lock:
        blocked_count += 1
        recent_blocked.append(attempt)
    recorder = _recorder
    if recorder is not None and not getattr(_local, "recording", False):
        _local.recording = True
        try:
            recorder(attempt)
        except Exception:  # best effort: the refusal matters more than its record
            pass
        finally:
            _local.recording = False
    raise EgressBlocked(f"outbound connection to {attempt['destination']} blocked by the egress guard: {reason}")
