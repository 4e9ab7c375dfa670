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
  program (pandoc, tesseract) cannot gain privileges;
- no files but its inputs and the system's, no sockets, no escaping its process group:
  Landlock, seccomp and ``setsid`` (apps.ingestion.confinement, security review M1). The
  parent kills the child's whole process group when the call ends, so a double-forked
  grandchild does not outlive it. Where Landlock or seccomp is missing the child refuses
  to parse unless ``INGEST_SANDBOX_ALLOW_WEAK`` is set (``isolation()``, check rag.E021).

What comes back is data for the caller to check: error messages are cut to
``MESSAGE_LIMIT`` characters without control characters (they reach the uploader).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import resource
import select
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.ingestion import confinement


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
    from rag_platform.process.offline import OFFLINE_ENVIRONMENT

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


MESSAGE_LIMIT = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def bounded(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    """A child's message as the parent may show it: a string without control or bidi
    characters, at most ``limit`` characters."""
    text = _CONTROL.sub(" ", str(text if text is not None else ""))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _checked(payload: Any) -> dict:
    if not isinstance(payload, dict) or not isinstance(payload.get("ok"), bool):
        raise SandboxError("returned something that is not a result", code="crashed")
    if not payload["ok"]:
        for key in ("kind", "type", "module", "code"):
            if payload.get(key) is not None:
                payload[key] = bounded(payload[key], 80)
        payload["message"] = bounded(payload.get("message"))
        if "traceback" in payload:
            payload["traceback"] = bounded(payload["traceback"], 8000)
    return payload


def allow_weak() -> bool:
    try:
        from django.conf import settings

        if settings.configured:
            return bool(getattr(settings, "INGEST_SANDBOX_ALLOW_WEAK", False))
    except Exception:  # noqa: BLE001 - not a Django process
        pass
    return os.environ.get("INGEST_SANDBOX_ALLOW_WEAK", "").lower() in {"1", "true", "yes", "on"}


def isolation() -> str:
    """What a child gets here: the file/system-call layers and the network: for example
    "landlock+seccomp, netns"; "weak (...)" when a layer is missing (health check, attest)."""
    return f"{confinement.isolation()}, {network_isolation()}"


def prepare_child(parent_pid: int, keep: tuple[int, ...], writable: str, readable: tuple[str, ...],
                  planned: tuple[list[str], list[str]]) -> None:
    """Everything a sandbox child does before it runs untrusted input (this module's docstring);
    raises ConfinementRefused in the weak mode unless it is allowed."""
    confinement.lead_own_group(parent_pid)
    # Everything inherited from the worker (model, parsers, Django) goes to the collector's
    # permanent generation: the child's collections then walk only what the parse creates,
    # instead of touching, and so copying, every page of the parent's heap (gc.freeze).
    gc.freeze()
    # Every allocation of 128 KiB or more gets its own mapping, so it counts against the
    # address-space limit: glibc's threshold grows with the worker's history (up to 32 MiB),
    # and an allocation served from the worker's freed heap would not.
    _libc().mallopt(M_MMAP_THRESHOLD, 128 * 1024)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
    (denied, needed), weak_ok = planned, allow_weak()
    _drop_environment()
    _leave_the_network()
    confinement.confine(parent_pid=parent_pid, denied=denied, needed=needed, writable=writable,
                        readable=readable, allow_weak=weak_ok)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_group(pid: int) -> None:
    """SIGKILL to the child's process group: the child and everything it started."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _child(write_fd: int, fn: Callable[..., Any], args: tuple, limits: tuple[int, int, int], parent_pid: int,
           writable: str, readable: tuple[str, ...], planned: tuple[list[str], list[str]]) -> None:
    memory_bytes, cpu_seconds, nice = limits
    status = 0
    try:
        try:
            prepare_child(parent_pid, (write_fd,), writable, readable, planned)
        except confinement.ConfinementRefused as refused:
            payload = {"ok": False, "kind": "refused", "message": str(refused)}
        else:
            if nice:
                os.nice(nice)
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


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def run_limited(
    fn: Callable[..., Any], *args: Any, memory_bytes: int, cpu_seconds: int, wall_seconds: float, nice: int = 0,
    readable: tuple[str, ...] | list[str] = (),
) -> SandboxResult:
    """``fn(*args)`` in a forked child; its JSON-serialisable return value, or an error.

    The child may read only the files in ``readable`` (its inputs) and the system's, and
    write only a private temporary folder (apps.ingestion.confinement). An exception raised
    by ``fn`` is returned as ``{"ok": False, ...}`` inside ``SandboxResult.value`` (message
    bounded) so the caller can map it to its own error types. A child that cannot be
    confined raises SandboxError(code="isolation") unless the weak mode is allowed.
    """
    readable = tuple(os.path.realpath(p) for p in readable)
    planned = confinement.plan()
    writable = tempfile.mkdtemp(prefix="rag-sandbox-")
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        _child(write_fd, fn, args, (memory_bytes, cpu_seconds, nice), parent_pid, writable, readable, planned)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = started + wall_seconds
    timed_out = False
    exited = os.pidfd_open(pid)  # readable once the child exits, even if a grandchild holds the pipe
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd, exited], [], [], min(left, 1.0))
            if read_fd in ready:
                block = os.read(read_fd, 1 << 20)
                if not block:
                    break
                chunks.append(block)
            elif exited in ready:  # all it wrote is in the pipe now
                os.set_blocking(read_fd, False)
                while block := _read_some(read_fd):
                    chunks.append(block)
                break
    finally:
        os.close(read_fd)
        os.close(exited)
        kill_group(pid)  # the child has exited (or overran): nothing it started survives it
        _, wait_status, usage = os.wait4(pid, 0)
        shutil.rmtree(writable, ignore_errors=True)
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
    try:
        payload = _checked(json.loads(b"".join(chunks)))
    except ValueError:
        raise SandboxError("returned something that is not a result", code="crashed") from None
    if not payload["ok"] and payload.get("kind") == "memory":
        raise SandboxError(f"needed more than {memory_bytes // (1024 * 1024)} MiB of memory", code="memory")
    if not payload["ok"] and payload.get("kind") == "refused":
        raise SandboxError(f"was refused: {payload['message']}", code="isolation")
    return SandboxResult(value=payload, seconds=seconds, peak_rss_bytes=peak)
