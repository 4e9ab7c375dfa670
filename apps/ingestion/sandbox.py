"""Run a parsing function in a forked child with memory, CPU and wall-clock limits.

A hostile or broken file may make a parser allocate without bound, spin, or crash the
interpreter. None of that may take the Celery worker down, so parsing happens in a child
forked from the (warm) worker process: the fork costs milliseconds, whereas a fresh
interpreter pays 5-10 s importing unstructured/spaCy/torch. The child gets
``RLIMIT_AS`` = its current address space + ``memory_bytes`` (torch alone maps gigabytes of
virtual memory, so an absolute limit would fail every allocation), ``RLIMIT_CPU``, and is
killed with SIGKILL at the wall-clock deadline. Results come back as JSON over a pipe.

Plain ``os.fork``: Celery's prefork pool processes are daemonic, and multiprocessing refuses
to start children from them. The child never touches the database and leaves with
``os._exit`` so no inherited connection, lock or atexit handler is run twice.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class SandboxError(Exception):
    """The child did not return a result. ``code``: "memory", "timeout", "crashed"."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SandboxResult:
    value: Any
    seconds: float
    peak_rss_bytes: int  # the child's peak resident memory


def _address_space_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(write_fd: int, fn: Callable[..., Any], args: tuple, memory_bytes: int, cpu_seconds: int, nice: int) -> None:
    status = 0
    try:
        if nice:
            os.nice(nice)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        limit = _address_space_now() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        try:
            payload = {"ok": True, "value": fn(*args)}
        except MemoryError:
            payload = {"ok": False, "kind": "memory", "message": "MemoryError"}
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            payload = {
                "ok": False,
                "kind": "exception",
                "type": type(exc).__name__,
                "module": type(exc).__module__,
                "message": str(exc),
                "code": getattr(exc, "code", None),
                "traceback": traceback.format_exc(limit=20),
            }
        data = json.dumps(payload).encode()
        view = memoryview(data)
        while view:
            written = os.write(write_fd, view)
            view = view[written:]
    except MemoryError:
        status = 3
    except BaseException:  # noqa: BLE001
        status = 4
    finally:
        os._exit(status)


def run_limited(
    fn: Callable[..., Any], *args: Any, memory_bytes: int, cpu_seconds: int, wall_seconds: float, nice: int = 0
) -> SandboxResult:
    """``fn(*args)`` in a forked child; its JSON-serialisable return value, or an error.

    An exception raised by ``fn`` is returned as ``{"ok": False, ...}`` inside
    ``SandboxResult.value`` so the caller can map it to its own error types.
    """
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        _child(write_fd, fn, args, memory_bytes, cpu_seconds, nice)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = started + wall_seconds
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
            if ready:
                block = os.read(read_fd, 1 << 20)
                if not block:
                    break
                chunks.append(block)
    finally:
        os.close(read_fd)
        _, wait_status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - started
    peak = int(usage.ru_maxrss) * 1024
    if timed_out:
        raise SandboxError(f"took longer than {wall_seconds:.0f} s", code="timeout")
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig in (signal.SIGXCPU, signal.SIGKILL) and usage.ru_utime + usage.ru_stime >= cpu_seconds:
            raise SandboxError(f"used more than {cpu_seconds} s of CPU time", code="timeout")
        if sig == signal.SIGKILL:  # the kernel's OOM killer, or an operator
            raise SandboxError("was killed (out of memory?)", code="memory")
        hint = ", usually out of memory" if sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS) else ""
        raise SandboxError(f"crashed ({signal.Signals(sig).name}{hint})", code="crashed")
    if not chunks:
        code = "memory" if os.WEXITSTATUS(wait_status) == 3 else "crashed"
        raise SandboxError(f"ended without a result (exit status {os.WEXITSTATUS(wait_status)})", code=code)
    payload = json.loads(b"".join(chunks))
    if not payload["ok"] and payload.get("kind") == "memory":
        raise SandboxError(f"needed more than {memory_bytes // (1024 * 1024)} MiB of memory", code="memory")
    return SandboxResult(value=payload, seconds=seconds, peak_rss_bytes=peak)
