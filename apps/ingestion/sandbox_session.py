"""One sandboxed child that serves many calls: a bulk upload's type checks without a fork each.

``run_limited`` forks a child per call (~60 ms from a process of 700 MiB, docs/benchmarks.md).
A folder, a zip or a multi-file form from one uploader pays that per file, so the type checks
of one bulk upload share a child set up the same way (apps.ingestion.sandbox.prepare_child:
clean environment, only its two pipes, an empty network namespace, Landlock and seccomp, its
own process group, ``RLIMIT_AS``), which answers call after call. Each call has its own
wall-clock deadline; a child that dies or overruns is killed with its process group, that call
fails with a :class:`SandboxError`, and the next call starts a new child.

The child reads no file but the ones handed to it: ``call_with_file(path, ...)`` hard-links
(or copies) ``path`` into the session's inbox, a private folder the child may read, and
removes it after the call. What a compromised child could see is the rest of the same
uploader's batch, no more.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from typing import Any

from apps.ingestion import confinement
from apps.ingestion.confinement import ConfinementRefused
from apps.ingestion.sandbox import SandboxError, _address_space_now, _checked, kill_group, prepare_child


def _serve(requests: int, results: int, fn: Callable[..., Any], memory_bytes: int, parent_pid: int,
           writable: str, inbox: str, planned: tuple) -> None:  # pragma: no cover - child
    status = 0
    try:
        try:
            prepare_child(parent_pid, (requests, results), writable, (inbox,), planned)
        except ConfinementRefused as refused:
            os.write(results, json.dumps({"ok": False, "kind": "refused", "message": str(refused)}).encode() + b"\n")
            return
        limit = _address_space_now() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        buffered = b""
        while True:
            while b"\n" not in buffered:
                block = os.read(requests, 1 << 16)
                if not block:
                    return  # the parent closed the session
                buffered += block
            line, buffered = buffered.split(b"\n", 1)
            try:
                payload = {"ok": True, "value": fn(*json.loads(line))}
            except MemoryError:
                payload = {"ok": False, "kind": "memory", "message": "MemoryError"}
            except Exception as exc:  # noqa: BLE001 - every error goes back to the parent
                payload = {"ok": False, "kind": "exception", "type": type(exc).__name__, "message": str(exc),
                           "code": getattr(exc, "code", None)}
            view = memoryview(json.dumps(payload).encode() + b"\n")
            while view:
                view = view[os.write(results, view):]
    except BaseException:  # noqa: BLE001
        status = 4
    finally:
        os._exit(status)


class LimitedSession:
    """``call(*args)`` runs ``fn(*args)`` in the session's child; returns the payload
    ``run_limited`` would put in ``SandboxResult.value``."""

    def __init__(self, fn: Callable[..., Any], *, memory_bytes: int, wall_seconds: float) -> None:
        self.fn, self.memory_bytes, self.wall_seconds = fn, memory_bytes, wall_seconds
        self.pid = 0
        self.calls = self.children = 0
        self._inbox = ""
        self._names = itertools.count()

    def _start(self, near: str) -> None:
        # The inbox is made beside the first file, so the next ones are hard links, not copies.
        self._inbox = tempfile.mkdtemp(prefix=".sandbox-inbox-", dir=os.path.dirname(os.path.realpath(near)))
        self._writable = tempfile.mkdtemp(prefix="rag-sandbox-")
        requests_read, self._requests = os.pipe()
        self._results, results_write = os.pipe()
        parent_pid, planned = os.getpid(), confinement.plan()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(self._requests)
            os.close(self._results)
            _serve(requests_read, results_write, self.fn, self.memory_bytes, parent_pid, self._writable, self._inbox,
                   planned)
        os.close(requests_read)
        os.close(results_write)
        self.pid, self._buffered = pid, b""
        self.children += 1

    def call_with_file(self, path: str, *args: Any) -> dict:
        """``call(<a readable copy of path>, *args)``: the child gets this one file."""
        if not self.pid:
            self._start(path)
        staged = os.path.join(self._inbox, f"{next(self._names)}{os.path.splitext(path)[1][:16]}")
        try:
            os.link(path, staged)
        except OSError:
            shutil.copyfile(path, staged)
        try:
            return self.call(staged, *args)
        finally:
            try:
                os.unlink(staged)
            except OSError:
                pass

    def call(self, *args: Any) -> dict:
        if not self.pid:
            self._start(tempfile.gettempdir())
        self.calls += 1
        try:
            view = memoryview(json.dumps(args).encode() + b"\n")
            while view:
                view = view[os.write(self._requests, view):]
            deadline = time.monotonic() + self.wall_seconds
            while b"\n" not in self._buffered:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._end(kill=True)
                    raise SandboxError(f"took longer than {self.wall_seconds:.0f} s", code="timeout")
                ready, _, _ = select.select([self._results], [], [], min(left, 1.0))
                if ready:
                    block = os.read(self._results, 1 << 20)
                    if not block:
                        status = self._end(kill=False)
                        raise SandboxError(f"ended without a result ({status})", code="crashed")
                    self._buffered += block
        except BrokenPipeError:
            raise SandboxError(f"ended without a result ({self._end(kill=False)})", code="crashed") from None
        line, self._buffered = self._buffered.split(b"\n", 1)
        try:
            payload = _checked(json.loads(line))
        except ValueError:
            self._end(kill=True)
            raise SandboxError("returned something that is not a result", code="crashed") from None
        if not payload["ok"] and payload.get("kind") == "refused":
            self._end(kill=True)
            raise SandboxError(f"was refused: {payload['message']}", code="isolation")
        if not payload["ok"] and payload.get("kind") == "memory":
            self._end(kill=True)  # a fresh child for the next call
            raise SandboxError(f"needed more than {self.memory_bytes // (1024 * 1024)} MiB of memory", code="memory")
        return payload

    def _end(self, *, kill: bool) -> str:
        if not self.pid:
            return ""
        if kill:
            kill_group(self.pid)
        for fd in (self._requests, self._results):
            try:
                os.close(fd)
            except OSError:
                pass
        _, status = os.waitpid(self.pid, 0)
        kill_group(self.pid)  # whatever the child started goes with it
        self.pid = 0
        for folder in (self._inbox, self._writable):
            shutil.rmtree(folder, ignore_errors=True)
        if os.WIFSIGNALED(status):
            return signal.Signals(os.WTERMSIG(status)).name
        return f"exit status {os.WEXITSTATUS(status)}"

    def close(self) -> None:
        self._end(kill=False)  # the child sees the end of its requests and leaves
