"""Run a parsing function in a forked child with memory, CPU and wall-clock limits.

A hostile or broken file may make a parser allocate without bound, spin, or crash the
interpreter. None of that may take the Celery worker down, so parsing happens in a child
forked from the (warm) worker process: a fork inherits the imported parsers, whereas a fresh
interpreter would import unstructured/spaCy/torch again for every file. The child gets
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

- a clean environment: only locale, PATH, the privacy switches and the few variables the
  libraries read themselves stay (the parsers' tuning comes with the job); no database or
  broker URL, no ``*_FILE`` secret paths, no keys. The in-memory settings' secrets (secret
  key, database and client passwords) are blanked too;
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
  to parse unless the ``INGEST_SANDBOX_ALLOW_WEAK`` setting is true (``isolation()``, check
  rag.E021); the parent reads it into the child's plan.

Both children (this module's one-call child and apps.ingestion.sandbox_session's serving
one) enter the sandbox through :func:`enter_sandbox` and answer through one codec
(apps.ingestion.sandbox_wire): the caller gets the value, or a ``SandboxError`` /
``ChildRaised`` with bounded messages (they reach the uploader).
"""

from __future__ import annotations

import gc
import os
import re
import resource
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.ingestion import confinement
from apps.ingestion.sandbox_wire import SandboxError, decode, encode, encode_refusal


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
# Environment variables the libraries in the child read themselves (locale, tesseract's data,
# numba's cache, thread counts); everything else is dropped. The project's own tunables come
# with the job (apps.ingestion.parse_settings) or in the plan, never from here.
KEPT_VARIABLES = re.compile(
    r"^(PATH|LANG|LANGUAGE|TZ|LC_[A-Z]+|TMPDIR|HOME|TERM|TESSDATA_PREFIX|NUMBA_CACHE_DIR|OMP_NUM_THREADS|"
    r"MKL_NUM_THREADS|OPENBLAS_NUM_THREADS|PYTHONHASHSEED|PYTHONIOENCODING)$")
SECRET_SETTINGS = ("SECRET_KEY", "SECRET_KEY_FALLBACKS", "OIDC_RP_CLIENT_SECRET", "LLM_API_KEY", "CELERY_BROKER_URL",
                   "AUDIT_SIGNING_KEY")
_isolation: dict[str, str] = {}


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
    libc = confinement.libc()
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


def allow_weak() -> bool:
    """The INGEST_SANDBOX_ALLOW_WEAK setting (false outside a Django process: refuse)."""
    from django.conf import settings

    return bool(settings.configured and getattr(settings, "INGEST_SANDBOX_ALLOW_WEAK", False))


def isolation() -> str:
    """What a child gets here: the file/system-call layers and the network: for example
    "landlock+seccomp, netns"; "weak (...)" when a layer is missing (health check, attest)."""
    return f"{confinement.isolation()}, {network_isolation()}"


@dataclass(frozen=True)
class ChildPlan:
    """What the parent settles before it forks: its pid (the child dies with it), the child's
    private writable folder, the input files it may read, the planned Landlock rules, and
    whether a weak sandbox is allowed (the setting, read here: the child's environment is
    cleared before it confines itself)."""

    parent_pid: int
    writable: str
    readable: tuple[str, ...]
    planned: tuple[list[str], list[str]]
    allow_weak: bool = False


def plan_child(readable: tuple[str, ...] | list[str] = ()) -> ChildPlan:
    """A plan for a child of this process; its writable folder exists until the caller removes it."""
    return ChildPlan(parent_pid=os.getpid(), writable=tempfile.mkdtemp(prefix="rag-sandbox-"),
                     readable=tuple(os.path.realpath(p) for p in readable), planned=confinement.plan(),
                     allow_weak=allow_weak())


def enter_sandbox(plan: ChildPlan, keep_fds: tuple[int, ...], memory_bytes: int, cpu_seconds: int | None = None,
                  nice: int = 0) -> None:
    """Everything a sandbox child does before it runs untrusted input, for both children (this
    module's docstring): its own process group, only ``keep_fds`` (and 0-2) open, a clean
    environment, no network, Landlock and seccomp, then the priority and the limits
    (``RLIMIT_AS`` = the address space now + ``memory_bytes``; ``RLIMIT_CPU`` unless None).
    Raises ConfinementRefused in the weak mode unless it is allowed."""
    confinement.lead_own_group(plan.parent_pid)
    # Everything inherited from the worker (model, parsers, Django) goes to the collector's
    # permanent generation: the child's collections then walk only what the parse creates,
    # instead of touching, and so copying, every page of the parent's heap (gc.freeze).
    gc.freeze()
    # Every allocation of 128 KiB or more gets its own mapping, so it counts against the
    # address-space limit: glibc's threshold grows with the worker's history (up to 32 MiB),
    # and an allocation served from the worker's freed heap would not.
    confinement.libc().mallopt(M_MMAP_THRESHOLD, 128 * 1024)
    low = 3
    for fd in sorted(keep_fds):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
    denied, needed = plan.planned
    _drop_environment()
    _leave_the_network()
    confinement.confine(parent_pid=plan.parent_pid, denied=denied, needed=needed, writable=plan.writable,
                        readable=plan.readable, allow_weak=plan.allow_weak)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if nice:
        os.nice(nice)
    limit = _address_space_now() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def kill_group(pid: int) -> None:
    """SIGKILL to the child's process group: the child and everything it started."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _child(write_fd: int, fn: Callable[..., Any], args: tuple, plan: ChildPlan,
           limits: tuple[int, int, int]) -> None:  # pragma: no cover - runs in the child
    memory_bytes, cpu_seconds, nice = limits
    status = 0
    try:
        try:
            enter_sandbox(plan, (write_fd,), memory_bytes, cpu_seconds, nice)
        except confinement.ConfinementRefused as refused:
            data = encode_refusal(str(refused))
        else:
            data = encode(fn, *args)
        write_all(write_fd, data)
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


def _collect(read_fd: int, pid: int, deadline: float) -> tuple[bytes, bool]:
    """What the child wrote before it exited, and whether the deadline passed first."""
    chunks: list[bytes] = []
    exited = os.pidfd_open(pid)  # readable once the child exits, even if a grandchild holds the pipe
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks), True
            ready, _, _ = select.select([read_fd, exited], [], [], min(left, 1.0))
            if read_fd in ready:
                block = os.read(read_fd, 1 << 20)
                if not block:
                    return b"".join(chunks), False
                chunks.append(block)
            elif exited in ready:  # all it wrote is in the pipe now
                os.set_blocking(read_fd, False)
                while block := _read_some(read_fd):
                    chunks.append(block)
                return b"".join(chunks), False
    finally:
        os.close(exited)


def _no_result(wait_status: int, usage: Any, cpu_seconds: int) -> SandboxError | None:
    """The error for a child that was killed or left without writing, else None."""
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig in (signal.SIGXCPU, signal.SIGKILL) and usage.ru_utime + usage.ru_stime >= cpu_seconds:
            return SandboxError(f"used more than {cpu_seconds} s of CPU time", code="timeout")
        if sig == signal.SIGKILL:  # the kernel's OOM killer, or an operator
            return SandboxError("was killed (out of memory?)", code="memory")
        hint = ", usually out of memory" if sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS) else ""
        return SandboxError(f"crashed ({signal.Signals(sig).name}{hint})", code="crashed")
    return None


def run_limited(
    fn: Callable[..., Any], *args: Any, memory_bytes: int, cpu_seconds: int, wall_seconds: float, nice: int = 0,
    readable: tuple[str, ...] | list[str] = (),
) -> SandboxResult:
    """``fn(*args)`` in a forked child; its JSON-serialisable return value in ``.value``.

    The child may read only the files in ``readable`` (its inputs) and the system's, and
    write only a private temporary folder (apps.ingestion.confinement). An exception raised
    by ``fn`` is raised here as ``ChildRaised`` (message bounded) for the caller to map to
    its own errors; limits, crashes and a child that cannot be confined (code "isolation",
    unless the weak mode is allowed) raise ``SandboxError``.
    """
    plan = plan_child(readable)
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        _child(write_fd, fn, args, plan, (memory_bytes, cpu_seconds, nice))
    os.close(write_fd)
    try:
        data, timed_out = _collect(read_fd, pid, started + wall_seconds)
    finally:
        os.close(read_fd)
        kill_group(pid)  # the child has exited (or overran): nothing it started survives it
        _, wait_status, usage = os.wait4(pid, 0)
        shutil.rmtree(plan.writable, ignore_errors=True)
    seconds = time.monotonic() - started
    if timed_out:
        raise SandboxError(f"took longer than {wall_seconds:.0f} s", code="timeout")
    error = _no_result(wait_status, usage, cpu_seconds)
    if error is not None:
        raise error
    if not data:
        code = "memory" if os.WEXITSTATUS(wait_status) == 3 else "crashed"
        raise SandboxError(f"ended without a result (exit status {os.WEXITSTATUS(wait_status)})", code=code)
    return SandboxResult(value=decode(data, memory_bytes=memory_bytes), seconds=seconds,
                         peak_rss_bytes=int(usage.ru_maxrss) * 1024)
