"""Issue 14's tampering attempts, each run as the application role (the test's own
connection, as web, workers and beat connect) against the real embedded PostgreSQL.

Each must be refused by the database, or be reported by audit_verify naming the first bad
sequence. Where the application role is refused, the same change made by the cluster
superuser (who can do anything) is shown to be detected too.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from apps.audit.checkpoints import audit_checkpoint_create
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.retention import legal_hold_place
from apps.audit.services import audit_record
from apps.audit.verification import audit_verify_all
from tests.db_roles import as_superuser

TABLES = ["audit_auditevent", "audit_auditcheckpoint", "audit_audittombstone", "audit_legalhold", "audit_datakey"]
STATEMENTS = {
    "UPDATE": "UPDATE {table} SET id = id",
    "DELETE": "DELETE FROM {table}",
    "TRUNCATE": "TRUNCATE {table}",
}


def record(n: int) -> list[AuditEvent]:
    return [audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, payload={"question": f"q{i}"})
            for i in range(n)]


def refused(*statements: str, params=None) -> str:
    """Run the statements as the application role in a savepoint; return the refusal."""
    with pytest.raises(DatabaseError) as error:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement, params)
    return str(error.value)


def _trail_with_rows() -> None:
    record(3)
    audit_checkpoint_create()
    legal_hold_place(starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now(), reason="x", placed_by=None)


@pytest.mark.django_db
def test_the_tests_run_as_the_application_role():
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_user, rolsuper FROM pg_roles WHERE rolname = session_user")
        role, superuser = cursor.fetchone()
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_auditevent'")
        owner = cursor.fetchone()[0]
    assert role == "rag_app" and not superuser and owner == "rag_owner"


@pytest.mark.django_db
@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("operation", list(STATEMENTS))
def test_update_delete_truncate_of_the_trail_tables_are_refused(table, operation):
    _trail_with_rows()
    assert "permission denied" in refused(STATEMENTS[operation].format(table=table))


@pytest.mark.django_db
def test_direct_insert_of_an_event_is_refused_and_the_function_picks_sequence_and_hash():
    record(2)
    assert "permission denied" in refused(
        "INSERT INTO audit_auditevent (sequence, created_at, event_type, outcome, actor_username, actor_roles, payload,"
        " session_hash, ip_address, user_agent, request_id, process, db_role, hash_version, prev_hash, hash)"
        " VALUES (3, now(), 'x', 'y', '', '[]', '{}', '', '', '', '', '', '', 2, 'p', 'h')")
    assert "permission denied" in refused("INSERT INTO audit_audittombstone (sequence, hash, event_type, created_at,"
                                          " expired_by_sequence, content_sha256, db_role) VALUES (1, 'h', 'x', now(), 2, '', '')")
    third = record(1)[0]
    assert third.sequence == 3 and third.db_role == "rag_app" and audit_verify_all().ok


@pytest.mark.django_db
def test_session_replication_role_is_refused():
    assert "permission denied" in refused("SET session_replication_role = replica")


@pytest.mark.django_db
@pytest.mark.parametrize("trigger", ["audit_event_append_only", "audit_event_no_truncate", "ALL"])
def test_disable_trigger_is_refused(trigger):
    assert "must be owner" in refused(f"ALTER TABLE audit_auditevent DISABLE TRIGGER {trigger}")


@pytest.mark.django_db
def test_the_door_settings_open_nothing_for_the_application_role():
    _trail_with_rows()
    assert "permission denied" in refused("SET LOCAL rag.audit_expiry = 'on'", "DELETE FROM audit_auditevent WHERE sequence = 1")
    assert "permission denied" in refused("SET LOCAL rag.audit_flush = 'on'", "TRUNCATE audit_auditevent")
    assert "permission denied" in refused("SET LOCAL rag.audit_flush = 'on'", "TRUNCATE audit_auditcheckpoint")
    assert AuditEvent.objects.count() == 4  # three questions and the hold's event


@pytest.mark.django_db
def test_releasing_a_legal_hold_without_its_function_is_refused():
    hold = legal_hold_place(starts_at=timezone.now(), ends_at=timezone.now(), reason="litigation", placed_by=None)
    assert "permission denied" in refused("UPDATE audit_legalhold SET released_at = now() WHERE id = %s", params=[hold.id])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_forged_retention_record_is_refused_and_reported():
    """The application role may not append a retention record at all (a control event:
    only the owner's expiry command writes it), nor write the tombstone; a superuser who
    does the rest (a tombstone pointing at an ordinary event, the deletion) is caught."""
    events = record(3)
    audit_checkpoint_create()
    with pytest.raises(DatabaseError, match="written only by the function"):
        with transaction.atomic():
            audit_record(event_type=EventType.AUDIT_EXPIRED, outcome=Outcome.SUCCESS,
                         payload={"sequences": [1], "count": 1, "via": "audit_expire"})
    assert "permission denied" in refused(
        "INSERT INTO audit_audittombstone (sequence, hash, event_type, created_at, expired_by_sequence, content_sha256,"
        " db_role) VALUES (%s, %s, %s, %s, %s, '', '')",
        params=[1, events[0].hash, events[0].event_type, events[0].created_at, 3])
    as_superuser(
        f"INSERT INTO audit_audittombstone (sequence, hash, event_type, created_at, expired_by_sequence, content_sha256,"
        f" db_role) VALUES (1, '{events[0].hash}', '{events[0].event_type}', now() - interval '10 years', 3, '', '')",
        "DELETE FROM audit_auditevent WHERE sequence = 1")
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == 1
    assert any("event #1" in p for p in report.problems), report.problems


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_deleting_the_newest_events_is_refused_and_a_superuser_deletion_is_reported_with_the_range():
    record(5)
    audit_checkpoint_create()
    assert "permission denied" in refused("DELETE FROM audit_auditevent WHERE sequence > 3")
    # The attack, as the superuser: triggers off, the newest events and the head rows gone.
    as_superuser("DELETE FROM audit_auditevent WHERE sequence > 3", "DELETE FROM audit_auditcheckpoint")
    report = audit_verify_all()  # the witness file still has the head through #5
    assert not report.ok and report.first_bad_sequence == 4
    assert any("events #4..#5 are missing" in p for p in report.problems), report.problems


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_deleting_checkpoint_rows_is_refused_and_a_superuser_deletion_is_reported():
    record(2)
    audit_checkpoint_create()
    record(1)
    audit_checkpoint_create()
    assert "permission denied" in refused("DELETE FROM audit_auditcheckpoint")
    as_superuser("DELETE FROM audit_auditcheckpoint WHERE number = 2")
    report = audit_verify_all()
    assert not report.ok
    assert any("signed head 2: witnessed" in p and "database row is gone" in p for p in report.problems), report.problems


@pytest.mark.django_db
def test_a_checkpoint_forged_by_the_application_role_fails_the_pinned_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from apps.audit import signing
    from apps.audit.chain import canonical_json
    from apps.audit.models import AuditCheckpoint

    events = record(2)
    key = Ed25519PrivateKey.generate()
    public_hex = signing.public_key_hex(key.public_key())
    statement = {"format": "rag-audit-checkpoint/2", "number": 1, "last_sequence": 2, "head_hash": events[1].hash,
                 "count": 2, "time": timezone.now().isoformat(), "previous": "0" * 64, "public_key": public_hex}
    text = canonical_json(statement)
    AuditCheckpoint.objects.create(number=1, created_at=timezone.now(), last_sequence=2, head_hash=events[1].hash,
                                   event_count=2, previous_digest="0" * 64, statement=text, digest="d" * 64,
                                   signature=key.sign(text.encode()).hex(), key_id=signing.key_id(public_hex))
    report = audit_verify_all()
    assert not report.ok and any("not signed by the pinned key" in p for p in report.problems)


@pytest.mark.django_db
def test_an_export_re_signed_with_a_new_key_is_reported(compliance_officer):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from apps.audit import signing
    from apps.audit.chain import canonical_json
    from apps.audit.exports import audit_export, verify_export

    record(2)
    export = audit_export(events=AuditEvent.objects.all(), filters={}, exported_by=compliance_officer)
    pin = os.environ["RAG_AUDIT_PIN"]
    assert verify_export(export.content, trusted_public_key=pin) == []
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    signed = json.loads(files["manifest.json"])
    signed["manifest"]["count"] = 1  # the forger's change, re-signed with a key of their own
    key = Ed25519PrivateKey.generate()
    signed["signature"] = key.sign(canonical_json(signed["manifest"]).encode()).hex()
    signed["public_key"] = signing.public_key_hex(key.public_key())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, json.dumps(signed) if name == "manifest.json" else data)
    problems = verify_export(buffer.getvalue(), trusted_public_key=pin)
    assert any("different key than the pinned one" in p for p in problems), problems
    assert any("different key" in p for p in verify_export(buffer.getvalue(), trusted_public_key=signing.fingerprint(pin)))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_edited_event_is_named():
    record(4)
    as_superuser("UPDATE audit_auditevent SET payload = '{\"question\": \"edited\"}' WHERE sequence = 2")
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == 2


def test_a_replaced_model_file_stops_the_stack(tmp_path, monkeypatch):
    """A same-size swapped weight file: the stack re-hashes the served files at start and
    refuses to start vLLM."""
    import argparse

    from rag_platform import llm_model, stack
    from rag_platform.process import model_manifest, vllm_server

    folder = tmp_path / "models" / model_manifest.SERVED_NAME
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"A" * 4096)
    (folder / "config.json").write_text("{}")
    manifest = model_manifest.write_manifest(folder, source={"test": True})
    (folder / "model.safetensors").write_bytes(b"B" * 4096)  # same size, other weights
    monkeypatch.setattr(llm_model, "prepare_model", lambda *a, **k: model_manifest.PreparedModel(
        path=folder, served_name=model_manifest.SERVED_NAME, sha256=manifest["sha256"]))
    started = []
    monkeypatch.setattr(vllm_server, "start_vllm_server", lambda *a, **k: started.append(a))
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.setenv("RAG_MODEL_DIR", str(tmp_path / "models"))
    supervisor = stack.Stack(argparse.Namespace(llm_port=0, web_port=0, workers=1))
    with pytest.raises(model_manifest.ModelIntegrityError, match="changed model.safetensors"):
        supervisor.start_llm()
    assert started == []


@pytest.mark.django_db
def test_credentials_in_urls_never_enter_the_trail():
    from apps.audit.redaction import redact_url

    event = audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED,
                         payload={"llm_endpoint": "http://svc:s3cret@127.0.0.1:8001/v1?api_key=abc&x=1",
                                  "nested": ["see redis://:pw@127.0.0.1:6379/0 now"]})
    stored = AuditEvent.objects.get(sequence=event.sequence).payload
    assert "s3cret" not in json.dumps(stored) and "abc" not in json.dumps(stored) and "pw@" not in json.dumps(stored)
    assert stored["llm_endpoint"] == "http://svc:***@127.0.0.1:8001/v1?api_key=***&x=1"
    assert redact_url("http://127.0.0.1:8001/v1") == "http://127.0.0.1:8001/v1"
    assert audit_verify_all().ok


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.slow
def test_the_web_process_has_no_key_and_gets_exports_signed_by_the_signer(client, compliance_officer, settings, tmp_path):
    """Web is not the signer: an export is signed by the real signer worker (queue audit)
    over the broker; with no signer running the export is refused (503) and audited."""
    from django.urls import reverse

    from apps.audit import signer as asking
    from apps.audit.exports import verify_export
    from tests.servers import database_url, start_worker, stop_process_group

    settings.AUDIT_SIGNER = False
    record(1)
    client.force_login(compliance_officer)
    original = asking.SIGN_TIMEOUT_SECONDS
    asking.SIGN_TIMEOUT_SECONDS = 3
    try:
        response = client.get(reverse("audit:event_export"))
    finally:
        asking.SIGN_TIMEOUT_SECONDS = original
    assert response.status_code == 503
    assert AuditEvent.objects.filter(event_type=EventType.AUDIT_EXPORTED, outcome=Outcome.ERROR).count() == 1
    log = tmp_path / "signer.log"
    signer = start_worker(database=database_url(connection.settings_dict), broker=os.environ["CELERY_BROKER_URL"],
                          log_path=log, concurrency=1, queues="audit", hostname="signer-test@%h", RAG_AUDIT_SIGNER="1",
                          RAG_AUDIT_WITNESS_FILE=settings.AUDIT_WITNESS_FILE, RAG_AUDIT_CHECKPOINT_DIR=settings.AUDIT_CHECKPOINT_DIR)
    try:
        response = client.get(reverse("audit:event_export"))
    finally:
        stop_process_group(signer)
    assert response.status_code == 200, (list(AuditEvent.objects.filter(outcome=Outcome.ERROR).values_list("payload", flat=True)), log.read_text()[-3000:])
    content = b"".join(response.streaming_content)  # the export streams from its spooled file
    assert verify_export(content, trusted_public_key=os.environ["RAG_AUDIT_PIN"]) == []

