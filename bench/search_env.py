"""A database for the retrieval benchmarks: DATABASE_URL if set, else an embedded PostgreSQL
(+ pgvector) kept in var/bench/postgres so a loaded corpus survives between runs.

    .venv/bin/python bench/search_env.py manage.py evaluate ../shared/eval/scifact-dev

runs a manage.py command against it (after migrating)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def database_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    from rag_platform.embedded import start_postgres

    server = start_postgres(ROOT / "var" / "bench" / "postgres", database="bench")
    # The benchmarks load data and migrate in one process: the owner's role (issue 14).
    os.environ["DATABASE_URL"] = server.owner_url
    database_url.server = server  # keep it referenced while the process runs
    return server.owner_url


def django_setup() -> None:
    database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")
    os.environ.setdefault("RAG_DATA_DIR", str(ROOT / "var" / "bench" / "data"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("audit_master_key", "--create", stdout=io.StringIO())  # question events are sealed


if __name__ == "__main__":
    database_url()
    os.environ.setdefault("RAG_DATA_DIR", str(ROOT / "var" / "bench" / "data"))
    python = sys.executable
    subprocess.run([python, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, cwd=ROOT)
    subprocess.run([python, str(ROOT / "manage.py"), "audit_master_key", "--create"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    sys.exit(subprocess.run([python, *sys.argv[1:]], cwd=ROOT).returncode)
