"""Issue 23, "detection that waits for someone to run a command": the checkpointer checks
the database against the witness before signing, the signer verifies on schedule, and the
compliance officer's pages show what was found (real embedded PostgreSQL; the last test
with the real signer worker and the real beat)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from apps.audit.alarms import TrailDiscrepancy
from apps.audit.checkpoints import audit_checkpoint_create
from apps.audit.models import AuditCheckpoint, AuditEvent, EventType, IntegrityRun, Outcome
from apps.audit.monitoring import scheduled_verification
from apps.audit.services import audit_record
from tests.db_roles import as_superuser

TRANSACTIONAL = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def record(n: int) -> list[AuditEvent]:
    return [audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, payload={"question": f"q{i}"})
            for i in range(n)]


def witness_lines() -> list[dict]:
    path = Path(settings.AUDIT_WITNESS_FILE)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def audit_page(client) -> str:
    return client.get(reverse("audit:event_list")).content.decode()


@TRANSACTIONAL
def test_the_issue_attack_stops_the_signer_raises_the_alarm_and_shows_the_banner(client, compliance_officer):
    """The owner (here the superuser) deletes the newest signed head and its events; the
    trail goes on. The signer signs nothing (no second head 2: no fork), the alarm is in
    the witness file, and the officer's page has the red banner with what was found."""
    record(5)
    audit_checkpoint_create()
    record(2)
    audit_checkpoint_create()
    as_superuser("DELETE FROM audit_auditevent WHERE sequence > 5", "DELETE FROM audit_auditcheckpoint WHERE number = 2")
    record(1)
    with pytest.raises(TrailDiscrepancy, match="signed head 2 is in the witness file but missing from the database"):
        audit_checkpoint_create()
    assert list(AuditCheckpoint.objects.values_list("number", flat=True)) == [1]
    lines = witness_lines()
    assert [line["statement"]["number"] for line in lines if "statement" in line] == [1, 2]
    alarms = [line["alarm"] for line in lines if "alarm" in line]
    assert len(alarms) == 1 and any("behind the witnessed head 2" in p for p in alarms[0]["problems"]), alarms
    with pytest.raises(TrailDiscrepancy):
        audit_checkpoint_create()  # every run refuses again; the witness gets the finding once
    assert len([line for line in witness_lines() if "alarm" in line]) == 1
    assert scheduled_verification().ok is False
    client.force_login(compliance_officer)
    page = audit_page(client)
    assert 'id="integrity-alarm"' in page and "Audit trail integrity alarm" in page
    assert "signed head 2 is in the witness file but missing from the database" in page
    assert "behind the witnessed head 2 (through #7)" in page
    assert "DOES NOT VERIFY" in page
    detail = client.get(reverse("audit:event_detail", args=[1])).content.decode()
    assert 'id="integrity-alarm"' in detail


@pytest.mark.django_db
def test_the_automatic_verification_is_incremental_and_shown(client, compliance_officer):
    client.force_login(compliance_officer)
    assert "not yet (the signer verifies every 10 minutes)" in audit_page(client)
    record(3)
    audit_checkpoint_create()
    first = scheduled_verification()
    assert first.ok and first.from_sequence == 0 and first.events_checked == first.head_sequence >= 3
    record(2)
    audit_checkpoint_create()
    second = scheduled_verification()
    assert second.ok and second.from_sequence == first.head_sequence and second.events_checked == second.head_sequence - first.head_sequence
    page = audit_page(client)
    assert 'id="integrity-alarm"' not in page
    assert "Last automatic verification:" in page and "verified" in page
    assert f"to #{second.head_sequence} re-hashed" in page


@TRANSACTIONAL
def test_a_deletion_behind_the_verified_head_is_found_by_the_next_run(client, compliance_officer):
    record(4)
    audit_checkpoint_create()
    assert scheduled_verification().ok
    as_superuser("DELETE FROM audit_auditevent WHERE sequence = 2")
    run = scheduled_verification()
    assert not run.ok and any("up to #" in p and "missing" in p for p in run.problems), run.problems
    client.force_login(compliance_officer)
    assert 'id="integrity-alarm"' in audit_page(client)


@pytest.mark.django_db
def test_a_status_row_forged_by_the_application_role_shows_as_forged(client, compliance_officer):
    """The application role may INSERT status rows (the signer connects as it); one it
    writes is not signed, and the banner says so instead of showing it as a result."""
    from django.utils import timezone

    record(1)
    audit_checkpoint_create()
    scheduled_verification()
    IntegrityRun.objects.create(kind="verify", created_at=timezone.now(), ok=True, problems=[], head_sequence=99,
                                statement="{}", signature="00" * 64, public_key=os.environ["RAG_AUDIT_PIN"])
    client.force_login(compliance_officer)
    page = audit_page(client)
    assert 'id="integrity-alarm"' in page and "not signed by the pinned key (forged)" in page


def test_the_beat_schedule_runs_the_verification_every_ten_minutes():
    schedule = settings.CELERY_BEAT_SCHEDULE["audit-verify"]
    assert schedule["task"] == "audit.verify" and schedule["schedule"] == 600.0
    assert schedule["options"]["queue"] == "audit"


@TRANSACTIONAL
@pytest.mark.slow
def test_on_the_real_stack_the_banner_appears_within_the_interval(client, compliance_officer, tmp_path):
    """Real signer worker and real beat (intervals shortened to seconds): events are signed
    and verified on schedule; after the owner-level deletion the banner appears within one
    verification interval, and the signer never signs a second head with the deleted number."""
    import time

    from rag_platform.embedded import child_environment

    from tests.servers import database_url, start_worker, stop_process_group, wait_until

    env = {"RAG_AUDIT_WITNESS_FILE": settings.AUDIT_WITNESS_FILE, "RAG_AUDIT_CHECKPOINT_DIR": settings.AUDIT_CHECKPOINT_DIR,
           "RAG_AUDIT_CHECKPOINT_MINUTES": "0.05", "RAG_AUDIT_VERIFY_MINUTES": "0.1"}
    database, broker = database_url(connection.settings_dict), os.environ["CELERY_BROKER_URL"]
    signer_log, beat_log = tmp_path / "signer.log", tmp_path / "beat.log"
    signer = start_worker(database=database, broker=broker, log_path=signer_log, concurrency=1, queues="audit",
                          hostname="signer-monitor@%h", RAG_AUDIT_SIGNER="1", **env)
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "rag_platform.celery_app", "beat", "--loglevel", "INFO",
         "--schedule", str(tmp_path / "beat-schedule")],
        cwd=Path(__file__).resolve().parent.parent, env=child_environment(DATABASE_URL=database, CELERY_BROKER_URL=broker,
                                                                          **env),
        stdin=subprocess.DEVNULL, stdout=beat_log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    client.force_login(compliance_officer)
    try:
        record(3)
        wait_until(lambda: AuditCheckpoint.objects.filter(last_sequence__gte=3).exists(), timeout=90,
                   what="a head through #3", log=signer_log)
        record(2)
        wait_until(lambda: AuditCheckpoint.objects.filter(last_sequence__gte=5).exists(), timeout=60,
                   what="a head through #5", log=signer_log)
        wait_until(lambda: IntegrityRun.objects.filter(kind="verify", ok=True).exists(), timeout=60,
                   what="an automatic verification", log=signer_log)
        assert 'id="integrity-alarm"' not in audit_page(client)
        newest = AuditCheckpoint.objects.order_by("-number").first()
        as_superuser(f"DELETE FROM audit_auditevent WHERE sequence > {newest.last_sequence - 2}",
                     f"DELETE FROM audit_auditcheckpoint WHERE number = {newest.number}")
        deleted_at = time.monotonic()
        wait_until(lambda: 'id="integrity-alarm"' in audit_page(client), timeout=60, what="the banner", log=signer_log)
        took = time.monotonic() - deleted_at
    finally:
        stop_process_group(beat)
        stop_process_group(signer)
    assert took <= 0.1 * 60 + 10, took  # one verification interval, plus a checkpoint run and the page
    numbers = [line["statement"]["number"] for line in witness_lines() if "statement" in line]
    assert numbers.count(newest.number) == 1, numbers  # no fork
    assert "AUDIT TRAIL ALARM" in signer_log.read_text()
