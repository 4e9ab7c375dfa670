"""The chaos benchmark's stack: started as a user starts it, its processes found and killed.

``python3 bootstrap.py run --no-demo`` in the worktree with the benchmark's own data directory
(``RAG_DATA_DIR``, on a size-limited tmpfs when the machine allows a mount), and every command
of the README run from a second shell with a clean environment (``env -i``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S', time.gmtime())}] {message}", flush=True)


class Stack:
    def __init__(self, data: Path, web_port: int, llm_port: int, model_dir: str) -> None:
        self.data, self.web_port, self.llm_port, self.model_dir = data, web_port, llm_port, model_dir
        self.log = data.parent / f"{data.name}-stack.log"
        self.process: subprocess.Popen | None = None
        self.mounted = False
        self.home = data.parent / f"{data.name}-home"

    # -- the data directory -------------------------------------------------------------
    def prepare(self, tmpfs_mb: int) -> str:
        """A fresh data directory; a tmpfs of ``tmpfs_mb`` MiB if mounting works. Returns how.
        The witness file of an earlier run goes too: it holds another installation's heads."""
        shutil.rmtree(self.data.parent / f"{self.data.name}-witness", ignore_errors=True)
        self.data.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        if tmpfs_mb and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={tmpfs_mb}m,mode=0755", "tmpfs",
                                        str(self.data)], capture_output=True).returncode == 0:
            self.mounted = True
            return f"tmpfs mount of {tmpfs_mb} MiB"
        return "plain directory (no mount permitted): the full disk is simulated by a ballast file"

    def release(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.data)], check=False)

    # -- start and stop -----------------------------------------------------------------
    def start(self, timeout: float = 1200) -> None:
        env = {"HOME": str(self.home), "PATH": "/usr/bin:/bin", "RAG_DATA_DIR": str(self.data),
               "RAG_WEB_PORT": str(self.web_port), "RAG_LLM_PORT": str(self.llm_port)}
        if self.model_dir:  # an already converted model (else the first start converts it into the data directory)
            env["RAG_MODEL_DIR"] = self.model_dir
        say(f"$ python3 bootstrap.py run --no-demo   (RAG_DATA_DIR={self.data}; log {self.log})")
        self.process = subprocess.Popen([sys.executable, "bootstrap.py", "run", "--no-demo"], cwd=ROOT, env=env,
                                        stdin=subprocess.DEVNULL, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(r"\] Ready\. Open ", self.log.read_text(errors="replace")):
                return
            if self.process.poll() is not None:
                raise RuntimeError("the stack exited before it was ready:\n" + self.tail())
            time.sleep(2)
        raise RuntimeError("the stack was not ready in time:\n" + self.tail())

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.shell("python3 bootstrap.py stop", timeout=180)
        if self.process:
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def endpoints(self) -> dict[str, str]:
        return json.loads((self.data / "run" / "stack.json").read_text())

    # -- the second shell ---------------------------------------------------------------
    def shell(self, command: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        """One README command line, from the project folder, in a clean environment."""
        env = [f"HOME={self.home}", "PATH=/usr/bin:/bin", f"RAG_DATA_DIR={self.data}"]
        return subprocess.run(["env", "-i", *env, "bash", "-c", command], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)

    def shell_background(self, command: str, log: Path) -> subprocess.Popen:
        env = [f"HOME={self.home}", "PATH=/usr/bin:/bin", f"RAG_DATA_DIR={self.data}"]
        return subprocess.Popen(["env", "-i", *env, "bash", "-c", command], cwd=ROOT, stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)

    def db(self):
        import psycopg
        import dj_database_url

        config = dj_database_url.parse(self.endpoints()["DATABASE_URL"])
        return psycopg.connect(host=config["HOST"], dbname=config["NAME"], user=config["USER"], autocommit=True,
                               connect_timeout=5)


# -- processes ------------------------------------------------------------------------------

def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def pids_matching(pattern: str, under: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            line = cmdline(int(proc.name))
            if under in line and re.search(pattern, line):
                found.append(int(proc.name))
    return sorted(found)


def celery_master(stack: Stack, hostname: str) -> int | None:
    supervisor = int(stack.endpoints()["SUPERVISOR_PID"])
    for child in children(supervisor):
        if f"{hostname}@" in cmdline(child):
            return child
    return None


def find_target(stack: Stack, component: str, wait: float = 60) -> tuple[int | None, str]:
    """The pid to SIGKILL for ``component`` and how it was picked."""
    deadline = time.monotonic() + wait
    while True:
        pid, how = _find_once(stack, component)
        if pid or time.monotonic() > deadline:
            return pid, how
        time.sleep(0.5)


def _find_once(stack: Stack, component: str) -> tuple[int | None, str]:
    if component in ("parse", "embed"):
        master = celery_master(stack, "ingest")
        pool = children(master) if master else []
        busy = [p for p in pool if children(p)]  # the parse step runs in a sandboxed child of its pool process
        idle = [p for p in pool if not children(p)]
        if component == "parse" and busy:
            return busy[0], "Celery pool process with a parse sandbox child (parsing now)"
        if component == "embed" and idle and busy:
            return idle[0], "the other pool process (encoding while its sibling parses)"
        if component == "embed" and idle and _cpu_busy(idle[0]):
            return idle[0], "the pool process using CPU with no parse child (encoding)"
        return None, "no pool process busy with that step"
    if component == "signer":
        return celery_master(stack, "signer"), "the signer's Celery master process"
    if component == "vllm":
        pids = pids_matching(r"vllm\.entrypoints\.openai\.api_server", "")
        pids = [p for p in pids if f"--port {stack.llm_port}" in cmdline(p)]
        return (pids[0] if pids else None), "the vLLM API server process (its engine core is in its group)"
    if component == "redis":
        pids = pids_matching(r"redis-server", "")
        pids = [p for p in pids if str(stack.data / "redis") in cmdline(p)]
        return (pids[0] if pids else None), "redis-server"
    if component == "postgres":
        pid_file = stack.data / "postgres" / "postmaster.pid"
        return (int(pid_file.read_text().split()[0]) if pid_file.exists() else None), "the postmaster"
    raise ValueError(component)


def _cpu_busy(pid: int, interval: float = 0.5) -> bool:
    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    try:
        before = ticks()
        time.sleep(interval)
        return ticks() - before > 10
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def leftover_processes() -> list[str]:
    return [f"{p}: {cmdline(p)[:150]}" for p in pids_matching(re.escape(str(ROOT)), "") if p != os.getpid()
            and "bench/chaos" not in cmdline(p)]
