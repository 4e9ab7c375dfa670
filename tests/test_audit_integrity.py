"""Tamper evidence: each kind of change a database superuser could make is detected and the
first bad event named; heads are signed and witnessed; retention keeps verification.

The superuser's changes are committed on its own connection, so these tests are
transactional; the test's own connection is the application role's."""

import json
import os
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError
from django.utils import timezone

from apps.audit.checkpoints import audit_checkpoint_create, checkpoint_file
from apps.audit.models import AuditEvent, AuditTombstone, EventType, Outcome
from apps.audit.retention import audit_expire, legal_hold_place
from apps.audit.services import audit_record
from apps.audit.verification import audit_verify_all
from tests.db_roles import OWNER, as_role, as_superuser, conninfo


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


def record(n):
    return [audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, payload={"question": f"q{i}"})
            for i in range(n)]


OWNER_DB = pytest.mark.django_db(transaction=True, serialized_rollback=True, databases=["default", "owner"])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_database_rejects_truncate():
    record(2)
    with pytest.raises((InternalError, ProgrammingError), match="permission denied"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("TRUNCATE audit_auditevent")
    with pytest.raises(psycopg.Error, match="append-only"):  # the owner, without the flush door
        as_role(OWNER, "TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db
def test_checkpoint_is_signed_exported_and_verifies(checkpoint_dir):
    record(3)
    checkpoint = audit_checkpoint_create()
    assert checkpoint.number == 1 and checkpoint.last_sequence == 3 and checkpoint.event_count == 3
    assert checkpoint_file(1, checkpoint_dir).exists() and (checkpoint_dir / "audit-signing.pub").exists()
    record(1)
    assert audit_checkpoint_create().previous_digest == checkpoint.digest
    report = audit_verify_all()
    assert report.ok, report.problems
    assert report.checkpoints_checked == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_edited_event_is_named():
    record(4)
    audit_checkpoint_create()
    as_superuser("UPDATE audit_auditevent SET payload = '{\"question\": \"edited\"}' WHERE sequence = 3")
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == 3
    assert "edited" in report.problems[0]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_deleted_event_is_named():
    record(4)
    as_superuser("DELETE FROM audit_auditevent WHERE sequence = 2")
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_reordered_events_are_named():
    record(4)
    # Swap the positions of events 2 and 3 (their sequence numbers), as an attacker might.
    as_superuser(
        "UPDATE audit_auditevent SET sequence = -2 WHERE sequence = 2",
        "UPDATE audit_auditevent SET sequence = 2 WHERE sequence = 3",
        "UPDATE audit_auditevent SET sequence = 3 WHERE sequence = -2",
    )
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_truncated_tail_is_caught_by_the_checkpoint():
    record(5)
    audit_checkpoint_create()
    as_superuser("DELETE FROM audit_auditevent WHERE sequence > 3")
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == 4
    assert any("truncated" in p for p in report.problems)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_truncated_table_is_caught_even_with_the_checkpoint_rows_gone():
    record(3)
    audit_checkpoint_create()
    as_superuser("TRUNCATE audit_auditevent", "TRUNCATE audit_auditcheckpoint")
    report = audit_verify_all()  # the exported checkpoint file still says 3 events
    assert not report.ok and report.first_bad_sequence == 1
    assert any("database row is gone" in p for p in report.problems)
    assert any("#1..#3 are missing" in p for p in report.problems)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_audit_verify_command_names_the_first_bad_event():
    record(3)
    call_command("audit_verify")  # clean: no error, and an audit.verified event
    assert AuditEvent.objects.filter(event_type=EventType.AUDIT_VERIFIED, outcome=Outcome.SUCCESS).exists()
    as_superuser("UPDATE audit_auditevent SET outcome = 'refused' WHERE sequence = 2")
    with pytest.raises(CommandError, match="first bad event: #2"):
        call_command("audit_verify", "--no-record")


@OWNER_DB
def test_retention_removes_old_checkpointed_events_and_keeps_verification(settings):
    settings.AUDIT_RETENTION_DEFAULT_DAYS = 0  # the policy in force, signed into the head below
    old = record(3)
    audit_checkpoint_create()
    record(1)
    removed = audit_expire()
    assert removed == [e.sequence for e in old]
    assert AuditTombstone.objects.count() == 3 and not AuditEvent.objects.filter(sequence__in=removed).exists()
    listing = AuditEvent.objects.get(event_type=EventType.AUDIT_EXPIRED)
    assert listing.db_role == OWNER and listing.payload["via"] == "audit_expire"
    report = audit_verify_all()
    assert report.ok, report.problems


@OWNER_DB
def test_an_expiry_before_the_signed_retention_period_is_reported():
    """The expiry command run with a clock in the future (or a policy changed after the head
    was signed): the tombstones do not count, audit_verify names the first."""
    record(3)
    audit_checkpoint_create()  # signs the 6-year policy
    removed = audit_expire(now=timezone.now() + timedelta(days=6 * 365 + 3))
    assert removed == [1, 2, 3]
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == 1
    assert "before its retention period (2192 days)" in report.problems[0]


@OWNER_DB
def test_legal_hold_and_missing_checkpoint_keep_events(settings):
    settings.AUDIT_RETENTION_DEFAULT_DAYS = 0
    events = record(2)
    assert audit_expire() == []  # nothing checkpointed yet
    audit_checkpoint_create()
    legal_hold_place(starts_at=events[0].created_at - timedelta(seconds=1), ends_at=events[0].created_at,
                     reason="litigation", placed_by=None)
    removed = audit_expire()
    assert events[0].sequence not in removed and events[1].sequence in removed
    assert audit_verify_all().ok


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_trigger_refuses_expiry_of_an_unprotected_event():
    record(2)  # no checkpoint, no tombstone
    with pytest.raises((InternalError, ProgrammingError), match="permission denied"):  # the application role
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL rag.audit_expiry = 'on'")
            cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 1")
    with pytest.raises(psycopg.Error, match="may not expire"):  # even the owner, through the door
        with psycopg.connect(**conninfo(OWNER)) as conn:
            conn.execute("SET LOCAL rag.audit_expiry = 'on'")
            conn.execute("DELETE FROM audit_auditevent WHERE sequence = 1")


@pytest.mark.django_db
def test_legal_hold_command_places_lists_and_releases_holds_with_audit_events():
    from io import StringIO

    from django.core.management import call_command

    from apps.audit.models import AuditEvent, EventType, LegalHold

    out = StringIO()
    call_command("audit_legal_hold", "place", "2026-01-01", "2026-03-31", reason="Litigation 42", stdout=out)
    hold = LegalHold.objects.get()
    assert "placed" in out.getvalue() and hold.released_at is None
    call_command("audit_legal_hold", "list", stdout=out)
    assert "Litigation 42" in out.getvalue()
    call_command("audit_legal_hold", "release", str(hold.id), stdout=out)
    hold.refresh_from_db()
    assert hold.released_at is not None
    types = list(AuditEvent.objects.order_by("sequence").values_list("event_type", flat=True))
    assert EventType.LEGAL_HOLD_PLACED in types and EventType.LEGAL_HOLD_RELEASED in types


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_verification_can_continue_from_the_last_signed_head():
    record(5)
    audit_checkpoint_create()
    record(2)
    report = audit_verify_all(from_last_head=True)
    assert report.ok and report.events_checked == 2 and report.head_sequence == 7
    as_superuser("UPDATE audit_auditevent SET outcome = 'refused' WHERE sequence = 6")
    report = audit_verify_all(from_last_head=True)
    assert not report.ok and report.first_bad_sequence == 6


@pytest.mark.django_db
def test_the_signer_signs_only_when_the_head_moved_and_never_invents_a_key(settings, tmp_path):
    from apps.audit.signing import SigningKeyUnavailable
    from apps.audit.witness import witness_read

    record(2)
    first = audit_checkpoint_create()
    assert first is not None and audit_checkpoint_create() is None  # nothing new: nothing signed
    record(1)
    assert audit_checkpoint_create().number == 2
    heads = witness_read()
    assert [h["statement"]["last_sequence"] for h in heads] == [2, 3]
    assert heads[0]["statement"]["retention"]["default_days"] == settings.AUDIT_RETENTION_DEFAULT_DAYS
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "missing.key")
    with pytest.raises(SigningKeyUnavailable, match="missing"):
        audit_checkpoint_create(force=True)
    assert not (tmp_path / "missing.key").exists()
    settings.AUDIT_SIGNER = False
    with pytest.raises(SigningKeyUnavailable, match="not the audit signer"):
        audit_checkpoint_create(force=True)


@pytest.mark.django_db
def test_key_rotation_is_a_signed_audited_event(tmp_path, settings):
    import shutil

    from apps.audit.signing import generate_key_file

    key_file = tmp_path / "current.key"
    shutil.copy(settings.AUDIT_SIGNING_KEY_FILE, key_file)
    settings.AUDIT_SIGNING_KEY_FILE = str(key_file)
    record(2)
    audit_checkpoint_create()
    new_public = generate_key_file(tmp_path / "new.key")
    call_command("audit_rotate_key", str(tmp_path / "new.key"))
    assert AuditEvent.objects.filter(event_type=EventType.KEY_ROTATED).count() == 1
    record(1)
    head = audit_checkpoint_create()
    assert json.loads(head.statement)["public_key"] == new_public
    report = audit_verify_all()  # pinned: the old key; the new one is trusted through the signed rotation
    assert report.ok, report.problems
    assert audit_verify_all(public_key_hex=new_public).ok is False  # pinning a key not in the first head fails


@pytest.mark.django_db
@pytest.mark.slow
def test_a_signer_without_its_key_stops_at_start_with_the_reason(tmp_path):
    from tests.servers import database_url, start_worker

    log = tmp_path / "signer.log"
    process = start_worker(database=database_url(connection.settings_dict), broker=os.environ["CELERY_BROKER_URL"],
                           log_path=log, concurrency=1, queues="audit", RAG_AUDIT_SIGNER="1",
                           RAG_AUDIT_SIGNING_KEY_FILE=str(tmp_path / "no-such.key"))
    assert process.wait(120) != 0
    assert "audit signer" in log.read_text() and "no-such.key is missing" in log.read_text()


@pytest.mark.django_db
def test_audit_expire_as_the_application_role_says_it_needs_the_owner(settings):
    settings.DATABASES = {k: v for k, v in settings.DATABASES.items() if k != "owner"}
    settings.AUDIT_RETENTION_DEFAULT_DAYS = 0
    record(2)
    audit_checkpoint_create()
    with pytest.raises(CommandError, match="RAG_DATABASE_OWNER_URL"):
        call_command("audit_expire")
