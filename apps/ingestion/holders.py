"""Which process holds a claim, and whether it is still alive.

A claim records the Celery task id and a lease (apps.ingestion.claims). When a pool process
is killed mid-task, its task is redelivered, but until the redelivery runs (behind a
replacement process warming up, or never if the worker's main process died too) the
documents it claimed wait for their lease (minutes). So a claim also names its holder:
host, boot, pid namespace, pid and the process's start time. A task on the same host, boot
and pid namespace can tell for sure that the holder is gone (no such pid, or a pid reused by
a process that started later) and take the claim over at once. Anything else (another
host, another container, a process it cannot read) counts as alive: the lease decides.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if fields[0] != "Z" else None  # a zombie is dead


@cache
def _place() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        pidns = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""
    return f"{socket.gethostname()}/{boot}/{pidns}"


def current_holder() -> str:
    """This process, as recorded with a claim ("" where /proc cannot tell: never taken over)."""
    return _holder(os.getpid())  # per pid: a forked pool process is a holder of its own


@cache
def _holder(pid: int) -> str:
    place, started = _place(), _start_ticks(pid)
    return f"{place}/{pid}/{started}" if place and started else ""


def holder_is_dead(holder: str) -> bool:
    """True only when ``holder`` ran on this host, boot and pid namespace and is gone."""
    place, _, rest = holder.rpartition("/")
    place, _, pid = place.rpartition("/")
    if not holder or not _place() or place != _place() or not pid.isdigit():
        return False
    return _start_ticks(int(pid)) != rest
