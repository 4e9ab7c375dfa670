"""What a sandbox child may reach: files (Landlock), system calls (seccomp), processes (its group).

Security review 2026-12-07, M1. ``confine(...)`` runs in the forked child of
apps.ingestion.sandbox before the parser, after the environment and descriptors are gone:

- **Files (Landlock, Linux >= 5.13, no privilege needed).** Read and execute everywhere
  except the *denied* paths: the data directory (every collection's stored files, staged
  uploads, keys, witness, run/ with the embedded PostgreSQL's and Redis's sockets), the
  folders of every ``*_FILE`` secret, of the audit keys, the database's socket folder,
  ``/run``, ``/var/run``, ``/secrets``, ``/etc/private-rag``, ``/tmp``, ``/dev/shm``, home
  folders, and the ``INGEST_SANDBOX_DENY`` setting (a list). The Python installation and the
  code stay readable even inside a denied folder. Writable: one private temporary folder
  (``TMPDIR``), made for this child and removed by the parent, and ``/dev/null``. The input
  files are granted one by one (``readable``). Landlock allows a whole tree per rule, so a
  folder holding a denied path is covered entry by entry (``_rules``). Landlock also
  confines ptrace (no reading the worker's memory through ``/proc/<pid>/mem``), TCP
  connect/bind (ABI 4), abstract Unix sockets and signals to processes outside the
  sandbox (ABI 6).
- **System calls (seccomp).** ``socket`` fails (pathname Unix sockets are not covered by
  Landlock or by an empty network namespace: the review connected to PostgreSQL from one),
  as do ``connect``, io_uring (which bypasses seccomp), ``setsid``/``setpgid`` (so every
  descendant stays in the child's process group, which the parent kills whole), ptrace,
  ``process_vm_*``, namespaces and mounts, keyrings, bpf, perf and userfaultfd.
- **Processes.** The child leads its own process group (``setsid``) and dies with its
  parent (``PR_SET_PDEATHSIG``); as root it drops every capability (bounding set too, so a
  helper program it runs does not regain them); otherwise ``RLIMIT_NPROC`` bounds forks.

``isolation()`` says which layers this machine gives. Without Landlock's file rules or
seccomp the child is "weak" (the old "guard-only"): it refuses to run the parser unless
``INGEST_SANDBOX_ALLOW_WEAK`` is true, and the system check rag.E021/W021 says so at start.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys
import tempfile
from pathlib import Path

PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 24, 22, 2
_LANDLOCK_CREATE, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT = 444, 445, 446  # same on x86_64 and aarch64
_FS_EXECUTE, _FS_WRITE, _FS_READ, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ALL_V1 = (1 << 13) - 1
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE | _FS_READ | _FS_TRUNCATE | _FS_IOCTL_DEV
_READ = _FS_READ | _FS_READ_DIR | _FS_EXECUTE
# In the private folder: everything but execute, devices and sockets.
_WRITABLE = _FS_ALL_V1 & ~(_FS_EXECUTE | (1 << 6) | (1 << 9) | (1 << 11)) | _FS_REFER | _FS_TRUNCATE
FIXED_DENIED = ("/run", "/var/run", "/secrets", "/etc/private-rag", "/var/lib/private-rag", "/tmp", "/var/tmp",
                "/dev", "/root", "/home")
DEVICES = {"/dev/null": _FS_READ | _FS_WRITE, "/dev/zero": _FS_READ, "/dev/full": _FS_READ | _FS_WRITE,
           "/dev/urandom": _FS_READ, "/dev/random": _FS_READ}
# seccomp: audit arch, x32 bit, and the denied calls (name -> number) per machine.
_SYSCALLS = {
    "x86_64": (0xC000003E, 0x40000000, {
        "socket": 41, "connect": 42, "ptrace": 101, "setpgid": 109, "setsid": 112, "process_vm_readv": 310,
        "process_vm_writev": 311, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
        "name_to_handle_at": 303, "open_by_handle_at": 304}),
    "aarch64": (0xC00000B7, 0, {
        "socket": 198, "connect": 203, "ptrace": 117, "setpgid": 154, "setsid": 157, "process_vm_readv": 270,
        "process_vm_writev": 271, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "name_to_handle_at": 264, "open_by_handle_at": 265}),
}
EACCES = 13


class ConfinementRefused(Exception):
    """The machine cannot confine the child and the weak mode is not allowed."""


def libc():
    """The C library, with errno kept (for prctl, mallopt, unshare and syscall)."""
    return ctypes.CDLL(None, use_errno=True)


def _layers(files: bool, calls: bool) -> str:
    return "+".join(name for name, on in (("landlock", files), ("seccomp", calls)) if on) or "none"


def _syscall(number: int, *args) -> int:
    """syscall(2) with every integer passed as a full register (varargs would pass an int)."""
    c = libc()
    c.syscall.restype = ctypes.c_long
    return c.syscall(ctypes.c_long(number), *(ctypes.c_long(a) if isinstance(a, int) else a for a in args))


def landlock_abi() -> int:
    """Landlock's ABI version on this kernel (0: none, or disabled)."""
    return max(_syscall(_LANDLOCK_CREATE, 0, 0, 1), 0)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def denied_paths(extra: tuple[str, ...] = ()) -> list[str]:
    """The paths the child may not read, resolved (computed before the environment is dropped)."""
    candidates: list[str] = list(FIXED_DENIED) + [tempfile.gettempdir()] + list(extra)
    for name, value in os.environ.items():
        if name.endswith("_FILE") and value.startswith("/"):
            candidates.append(str(Path(value).parent))
    try:
        from django.conf import settings

        if settings.configured:
            candidates += list(getattr(settings, "INGEST_SANDBOX_DENY", []))
            for name in ("DATA_DIR", "MEDIA_ROOT", "AUDIT_CHECKPOINT_DIR"):
                if getattr(settings, name, None):
                    candidates.append(str(getattr(settings, name)))
            for name in ("AUDIT_MASTER_KEY_FILE", "AUDIT_WITNESS_FILE", "AUDIT_ERASURE_LEDGER",
                         "AUDIT_SIGNING_KEY_FILE"):
                if getattr(settings, name, None):
                    candidates.append(str(Path(getattr(settings, name)).parent))
            for database in settings.DATABASES.values():
                if str(database.get("HOST") or "").startswith("/"):
                    candidates.append(str(database["HOST"]))
            broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
            if "socket://" in broker:
                candidates.append(str(Path(broker.split("socket://", 1)[1].split("?")[0]).parent))
    except Exception:  # noqa: BLE001 - not a Django process: the fixed list only
        pass
    try:
        candidates.append(str(Path.home()))
    except RuntimeError:
        pass
    return sorted({os.path.realpath(p) for p in candidates if p and p.startswith("/")})


def needed_paths() -> list[str]:
    """What the parser must still read inside a denied folder: Python, the code, caches."""
    from rag_platform.process.runtime import PROJECT_DIR

    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, str(PROJECT_DIR)]
    paths += [p for p in sys.path if p and os.path.isdir(p)]
    if os.environ.get("NUMBA_CACHE_DIR"):
        paths.append(os.environ["NUMBA_CACHE_DIR"])
    return sorted({os.path.realpath(p) for p in paths})


def _depth(path: str, roots: list[str]) -> int:
    return max((len(r) for r in roots if _under(path, r)), default=-1)


def _rules(denied: list[str], needed: list[str]) -> list[tuple[str, int]]:
    """(path, rights) that grant read on everything but ``denied``; the deeper of a denied and a
    needed path wins. A folder containing a denied or needed path is granted entry by entry."""
    rules: list[tuple[str, int]] = []

    def visit(folder: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path = entry.path
            if entry.is_symlink():  # followed at use: the target is covered where it lives
                continue
            inside = [r for r in denied + needed if r != path and _under(r, path)]
            if _depth(path, denied) > _depth(path, needed):  # denied
                if any(_under(n, path) for n in needed):
                    visit(path)
                continue
            if inside and entry.is_dir(follow_symlinks=False):
                visit(path)
            elif entry.is_dir(follow_symlinks=False):
                rules.append((path, _READ))
            elif entry.is_file(follow_symlinks=False):
                rules.append((path, _FS_READ | _FS_EXECUTE))

    visit("/")
    return rules


_planned: dict[tuple, tuple[float, list[tuple[str, int]]]] = {}


def planned_rules(denied: list[str], needed: list[str]) -> list[tuple[str, int]]:
    """``_rules``, remembered for a minute: the parent plans before it forks (walking the tree
    costs tens of milliseconds, docs/benchmarks.md), so each child only opens the paths."""
    import time

    key, now = (tuple(denied), tuple(needed)), time.monotonic()
    if key not in _planned or now - _planned[key][0] > 60:
        _planned.clear()
        _planned[key] = (now, _rules(denied, needed))
    return _planned[key][1]


def plan() -> tuple[list[str], list[str]]:
    """(denied, needed) for a child of this process, with its rules planned."""
    denied, needed = denied_paths(), needed_paths()
    planned_rules(denied, needed)
    return denied, needed


def _add_rule(ruleset: int, path: str, rights: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        attr = struct.pack("=Qi", rights, fd)
        buffer = ctypes.create_string_buffer(attr, len(attr))
        if _syscall(_LANDLOCK_ADD_RULE, ruleset, 1, buffer, 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def apply_landlock(*, denied: list[str], needed: list[str], writable: str, readable: tuple[str, ...]) -> bool:
    """Restrict this process's files as the module says; False where the kernel has no Landlock."""
    abi = landlock_abi()
    if abi < 1:
        return False
    handled = _FS_ALL_V1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0) | (
        _FS_IOCTL_DEV if abi >= 5 else 0)
    fields = [handled]
    if abi >= 4:
        fields.append(0b11)  # TCP bind and connect: no rule allows any
    if abi >= 6:
        fields.append(0b11)  # abstract Unix sockets and signals stay inside the sandbox
    attr = struct.pack(f"={len(fields)}Q", *fields)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _syscall(_LANDLOCK_CREATE, buffer, len(attr), 0)
    if ruleset < 0:
        return False
    try:
        for path, rights in planned_rules(denied, needed):
            try:
                _add_rule(ruleset, path, rights & handled)
            except OSError:
                continue  # vanished, or not openable: stays denied
        for path, rights in DEVICES.items():
            if os.path.exists(path):
                _add_rule(ruleset, path, rights)
        _add_rule(ruleset, writable, _WRITABLE & handled)
        for path in readable:
            _add_rule(ruleset, path, _FS_READ)
        if _syscall(_LANDLOCK_RESTRICT, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return True


def seccomp_supported() -> bool:
    return platform.machine() in _SYSCALLS


def apply_seccomp() -> bool:
    """Install the filter of the module's docstring; False on a machine it does not know."""
    if not seccomp_supported():
        return False
    arch, x32, calls = _SYSCALLS[platform.machine()]
    ld_w_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    deny, allow = 0x00050000 | EACCES, 0x7FFF0000
    numbers = sorted(calls.values())
    program = [(ld_w_abs, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, deny), (ld_w_abs, 0, 0, 0)]
    if x32:
        program.append((jge, len(numbers) + 1, 0, x32))
    for index, number in enumerate(numbers):
        program.append((jeq, len(numbers) - index, 0, number))
    program += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    filters = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(filters, len(filters))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buffer))
    fbuffer = ctypes.create_string_buffer(fprog, len(fprog))
    if libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fbuffer, ctypes.c_long(0), ctypes.c_long(0)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp")
    return True


def lead_own_group(parent_pid: int) -> None:
    """First thing in the child: its own process group (killed whole), and death with the parent."""
    os.setsid()
    libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(5)


def drop_privileges() -> None:
    """Root: no capabilities (bounding set first, so an executed helper regains none).
    Anyone else: at most 64 more processes than the user runs now."""
    c = libc()
    if os.geteuid() == 0:
        for cap in range(64):
            c.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        header = struct.pack("=Ii", 0x20080522, 0)
        data = bytes(24)
        _syscall(126 if platform.machine() == "x86_64" else 91,  # capset
                 ctypes.create_string_buffer(header, 8), ctypes.create_string_buffer(data, 24))
        return
    import resource

    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                continue
    resource.setrlimit(resource.RLIMIT_NPROC, (count + 64, count + 64))


def confine(*, parent_pid: int, denied: list[str], needed: list[str], writable: str,
            readable: tuple[str, ...], allow_weak: bool) -> str:
    """Everything after :func:`lead_own_group`; returns the layers applied ("landlock+seccomp").
    Raises :class:`ConfinementRefused` when a layer is missing and ``allow_weak`` is false."""
    os.environ["TMPDIR"] = tempfile.tempdir = writable
    files = apply_landlock(denied=denied, needed=needed, writable=writable, readable=readable)
    drop_privileges()
    calls = apply_seccomp()
    layers = _layers(files, calls)
    if not (files and calls) and not allow_weak:
        raise ConfinementRefused(
            f"the parse sandbox cannot confine files and system calls on this machine (only: {layers}); "
            "set INGEST_SANDBOX_ALLOW_WEAK=true to parse anyway (security review M1)")
    return layers


def isolation() -> str:
    """The layers a child gets here, without forking: "landlock+seccomp", or "weak (...)"."""
    files, calls = landlock_abi() >= 1, seccomp_supported()
    layers = _layers(files, calls)
    return layers if files and calls else f"weak ({layers})"
