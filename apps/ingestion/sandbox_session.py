"""One sandboxed child that serves many calls: a bulk upload's type checks without a fork each.

``run_limited`` forks a child per call, which costs tens of milliseconds from a large process
(docs/benchmarks.md). A folder, a zip or a multi-file form from one uploader pays that per file, so the type checks
of one bulk upload share a child set up the same way (apps.ingestion.sandbox.enter_sandbox:
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
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from typing import Any

from apps.ingestion.confinement import ConfinementRefused
from apps.ingestion.sandbox import ChildPlan, enter_sandbox, kill_group, plan_child, write_all
from apps.ingestion.sandbox_wire import SandboxError, decode, encode, encode_refusal


def _serve(requests: int, results: int, fn: Callable[..., Any], plan: ChildPlan,
           memory_bytes: int) -> None:  # pragma: no cover - child
    status = 0
    try:
        try:  # no CPU limit: it would add up over the calls; each call has its wall-clock deadline
            enter_sandbox(plan, (requests, results), memory_bytes)
        except ConfinementRefused as refused:
            write_all(results, encode_refusal(str(refused)))
            return
        buffered = b""
        while True:
            while b"\n" not in buffered:
                block = os.read(requests, 1 << 16)
                if not block:
                    return  # the parent closed the session
                buffered += block
            line, buffered = buffered.split(b"\n", 1)
            write_all(results, encode(fn, *json.loads(line)))
    except BaseException:  # noqa: BLE001
        status = 4
    finally:
        os._exit(status)


class LimitedSession:
    """``call(*args)`` runs ``fn(*args)`` in the session's child and returns its value, or
    raises as ``run_limited`` does (``SandboxError``, ``ChildRaised``)."""

    def __init__(self, fn: Callable[..., Any], *, memory_bytes: int, wall_seconds: float) -> None:
        self.fn, self.memory_bytes, self.wall_seconds = fn, memory_bytes, wall_seconds
        self.pid = 0
        self.calls = self.children = 0
        self._inbox = ""
        self._names = itertools.count()

    def _start(self, near: str) -> None:
        # The inbox is made beside the first file, so the next ones are hard links, not copies.
        self._inbox = tempfile.mkdtemp(prefix=".sandbox-inbox-", dir=os.path.dirname(os.path.realpath(near)))
        plan = plan_child((self._inbox,))
        self._writable = plan.writable
        requests_read, self._requests = os.pipe()
        self._results, results_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(self._requests)
            os.close(self._results)
            _serve(requests_read, results_write, self.fn, plan, self.memory_bytes)
        os.close(requests_read)
        os.close(results_write)
        self.pid, self._buffered = pid, b""
        self.children += 1

    def call_with_file(self, path: str, *args: Any) -> Any:
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

    def call(self, *args: Any) -> Any:
        if not self.pid:
            self._start(tempfile.gettempdir())
        self.calls += 1
        try:
            write_all(self._requests, json.dumps(args).encode() + b"\n")
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
            return decode(line, memory_bytes=self.memory_bytes)
        except SandboxError:  # garbled, refused, or out of memory: a fresh child for the next call
            self._end(kill=True)
            raise

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
