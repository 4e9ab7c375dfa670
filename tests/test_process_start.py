"""One process start (rag_platform.process.start) and one configuration of Celery beat."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag_platform.process.offline import OFFLINE_ENVIRONMENT

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_start_forces_offline_installs_the_guard_and_names_the_process_before_django():
    code = ("import sys; from rag_platform.process import start, egress, runtime; start('probe'); start(); "
            "import os; print(egress.is_installed(), runtime.process_role(), os.environ['HF_HUB_OFFLINE'], "
            "os.environ['DJANGO_SETTINGS_MODULE'], 'django' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENVIRONMENT and k != "DJANGO_SETTINGS_MODULE"}
    env["HF_HUB_OFFLINE"] = "0"  # an operator's stray switch is overridden, not kept
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    # start() again without a role keeps the name; Django is not imported by the start itself.
    assert out.stdout.split() == ["True", "probe", "1", "rag_platform.settings", "False"], out.stderr


def test_every_beat_entry_names_a_registered_task_on_a_routed_queue(settings):
    from rag_platform.celery_app import app

    app.loader.import_default_modules()
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert {"audit-checkpoint", "audit-verify", "ingestion-housekeeping", "auth-failures-summarise"} <= set(schedule)
    for name, entry in schedule.items():
        assert entry["task"] in app.tasks, name
        assert entry["schedule"] > 0, name
    assert schedule["audit-checkpoint"]["options"]["queue"] == "audit"  # only the signer holds the key


def test_the_stack_and_the_tests_start_the_same_worker():
    from rag_platform.commands import worker_command

    command = worker_command(concurrency=2, queues="parse,embed,celery", hostname="ingest@%h")
    assert command[:6] == [sys.executable, "-m", "celery", "-A", "rag_platform.celery_app", "worker"]
    assert command[command.index("--queues") + 1] == "parse,embed,celery"
    assert command[command.index("--concurrency") + 1] == "2"
    servers = (PROJECT / "tests" / "servers.py").read_text()
    stack = (PROJECT / "rag_platform" / "stack.py").read_text()
    assert "worker_command(" in servers and stack.count("worker_command(") == 2  # ingest + signer
