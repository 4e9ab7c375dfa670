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
``os._exit`` so no inherited connection, lock or atexit handler is run twice. The process
that receives an upload forks one too, to decide the file's type (apps.ingestion.sniffing):
a gunicorn worker with many threads, of which the child keeps only the caller. CPython and
logging re-initialise their locks after a fork; were the child ever stuck on another lock a
thread held at the fork, the wall-clock deadline kills it and the upload is refused, not hung.

Before the parser runs, the child also drops what a compromised parser (a memory-safety bug
in pdfium, Pillow, libxml2, tesseract or pandoc) could use (security review, finding 5):

- a clean environment: only locale, PATH, the privacy switches and the parsers' own tuning
  variables stay; no database or broker URL, no ``*_FILE`` secret paths, no keys. The
  in-memory settings' secrets (secret key, database and client passwords) are blanked too;
- every file descriptor but 0-2 and the result pipe is closed (the database and broker
  sockets, the model's and the logs' files);
- no network: a new, empty network namespace (``unshare(CLONE_NEWNET)``; as root, or in a
  new user namespace where the kernel allows unprivileged ones), so native code that never
  passes Python's audit hook has no interface to send from, and no_new_privs so a helper
  program (pandoc, tesseract) cannot gain privileges. Where neither namespace is allowed the
  child runs with the egress guard only (``network_isolation()`` says which); deployments
  then rely on the parse workers' network policy (deploy/k8s) or their own user (systemd).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
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


CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_NO_NEW_PRIVS = 38
M_MMAP_THRESHOLD = -3  # mallopt(3)
# Environment variables the parsers may need; everything else is dropped in the child.
KEPT_VARIABLES = re.compile(
    r"^(PATH|LANG|LANGUAGE|TZ|LC_[A-Z]+|TMPDIR|HOME|TERM|TESSDATA_PREFIX|TESSERACT_CMD|SPACY_SENTENCES|"
    r"PDF_TEXT_ENGINE|NUMBA_CACHE_DIR|OMP_NUM_THREADS|MKL_NUM_THREADS|OPENBLAS_NUM_THREADS|INGEST_[A-Z0-9_]+|"
    r"PYTHONHASHSEED|PYTHONIOENCODING)$")
SECRET_SETTINGS = ("SECRET_KEY", "SECRET_KEY_FALLBACKS", "OIDC_RP_CLIENT_SECRET", "LLM_API_KEY", "CELERY_BROKER_URL",
                   "AUDIT_SIGNING_KEY")
_isolation: dict[str, str] = {}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _drop_environment() -> None:
    from rag_platform.privacy import OFFLINE_ENVIRONMENT

    kept = {k: v for k, v in os.environ.items() if KEPT_VARIABLES.match(k) and not k.endswith("_FILE")}
    os.environ.clear()
    os.environ.update(kept)
    os.environ.update(OFFLINE_ENVIRONMENT)
    try:
        from django.conf import settings

        if settings.configured:
            import secrets

            for name in SECRET_SETTINGS:  # Django refuses an empty SECRET_KEY: a throwaway one
                if hasattr(settings, name):
                    setattr(settings, name, secrets.token_hex(32) if isinstance(getattr(settings, name), str) else [])
            for database in settings.DATABASES.values():
                database["PASSWORD"] = ""
                database["HOST"] = database["NAME"] = ""
    except Exception:  # noqa: BLE001 - not a Django process: nothing to blank
        pass


def _close_descriptors(keep: int) -> None:
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)


def _leave_the_network() -> str:
    """Enter an empty network namespace; returns how ("netns", "userns+netns") or "guard-only"."""
    libc = _libc()
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.unshare(CLONE_NEWNET) == 0:
        return "netns"
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return "userns+netns"
    return "guard-only"


def network_isolation() -> str:
    """What the parse child gets on this machine: "netns", "userns+netns" or "guard-only"
    (measured once, in a throwaway child, for the attestation report and the tests)."""
    if "mode" not in _isolation:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.write(write_fd, _leave_the_network().encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        _isolation["mode"] = os.read(read_fd, 64).decode() or "guard-only"
        os.close(read_fd)
        os.waitpid(pid, 0)
    return _isolation["mode"]


def _child(write_fd: int, fn: Callable[..., Any], args: tuple, memory_bytes: int, cpu_seconds: int, nice: int) -> None:
    status = 0
    # Everything inherited from the worker (model, parsers, Django) goes to the collector's
    # permanent generation: the child's collections then walk only what the parse creates,
    # instead of touching, and so copying, every page of the parent's heap (Python's gc docs,
    # gc.freeze).
    gc.freeze()
    try:
        # Every allocation of 128 KiB or more gets its own mapping, so it counts against the
        # address-space limit below: glibc's threshold grows with the worker's history (up
        # to 32 MiB), and an allocation served from the worker's freed heap would not.
        _libc().mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        _close_descriptors(write_fd)
        _drop_environment()
        _leave_the_network()
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
