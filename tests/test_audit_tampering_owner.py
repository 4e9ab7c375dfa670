"""Issue 23's attacks on the audit trail with more than the application role's rights:
the owner's credentials (the migrate job, a DBA), the signer as an oracle over the broker,
and the application role appending what only the trail's own functions may write.

Each is run against the real embedded PostgreSQL (and the real signer worker where the
signer is the target) and must be refused, or reported by audit_verify / verify_export.
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
from apps.audit.models import AuditCheckpoint, AuditEvent, EventType, Outcome
from apps.audit.services import audit_record
from apps.audit.verification import audit_verify_all


def record(n: int) -> list[AuditEvent]:
    return [audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, payload={"question": f"q{i}"})
            for i in range(n)]


def refused(statement: str, params=None) -> str:
    with pytest.raises(DatabaseError) as error:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    return str(error.value)


# --- Issue 23: owner-role attacks (the owner's credentials: the migrate job or a DBA) -----------

OWNER_DB = pytest.mark.django_db(transaction=True, serialized_rollback=True, databases=["default", "owner"])


def _owner_tombstones(sequence: int, *, event_type: str, age_days: int, content_sha256: str = "",
                      disable_triggers: bool = False) -> None:
    """The review's H2 reproduction, run as the owner: a retention record by the owner,
    a tombstone of its choosing for ``sequence``, then the deletion through the expiry door."""
    from django.db import connections

    from apps.audit.models import AuditTombstone

    ev = AuditEvent.objects.using("owner").get(sequence=sequence)
    with transaction.atomic(using="owner"):
        if disable_triggers:
            with connections["owner"].cursor() as c:
                c.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL")
        rec = audit_record(event_type=EventType.AUDIT_EXPIRED, outcome=Outcome.SUCCESS, using="owner",
                           payload={"sequences": [sequence], "count": 1, "before": "x", "via": "audit_expire",
                                    "retention_days": {}})
        AuditTombstone.objects.using("owner").create(
            sequence=sequence, hash=ev.hash, event_type=event_type, created_at=ev.created_at - timedelta(days=age_days),
            expired_by_sequence=rec.sequence, db_role=ev.db_role, content_sha256=content_sha256)
        with connections["owner"].cursor() as c:
            c.execute("SET LOCAL rag.audit_expiry = 'on'")
            c.execute("DELETE FROM audit_auditevent WHERE sequence = %s", [sequence])
            if disable_triggers:
                c.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER ALL")


@OWNER_DB
def test_owner_tombstone_downgrade_of_a_signed_question_is_reported():
    """H2: the owner hides a signed-over question behind a tombstone with no content hash,
    an old time and a short-lived type; verification with the pinned key and the witness
    must not pass."""
    record(3)
    audit_checkpoint_create()
    _owner_tombstones(2, event_type="auth.sign_in_failed", age_days=3000)
    audit_checkpoint_create()
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == 2, report.problems
    assert any("event #2" in p for p in report.problems), report.problems


@OWNER_DB
def test_owner_tombstone_of_a_legal_hold_event_is_reported():
    """H2: deleting an audit.legal_hold_placed event the same way (triggers off, since the
    hold is active) would hide the hold; it is reported."""
    from apps.audit.retention import legal_hold_place

    record(1)
    legal_hold_place(starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now() + timedelta(days=1),
                     reason="litigation", placed_by=None)
    record(1)
    audit_checkpoint_create()
    placed = AuditEvent.objects.get(event_type=EventType.LEGAL_HOLD_PLACED)
    _owner_tombstones(placed.sequence, event_type=EventType.LEGAL_HOLD_PLACED, age_days=3000, disable_triggers=True)
    report = audit_verify_all()
    assert not report.ok and report.first_bad_sequence == placed.sequence, report.problems


# --- H1: the signer as a signing oracle ------------------------------------------------------

def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.django_db
def test_a_forged_export_signed_through_the_signer_is_refused(compliance_officer):
    """The broker client fabricates an event line (self-consistent hash) and asks the signer
    to sign its files' hashes for the real range: the signer signs only the events it read,
    so the fabricated line does not verify; an old-style manifest signed over raw text (the
    former oracle) is not trusted at all; a request with fields of its own is refused."""
    import hashlib

    from apps.audit import signing
    from apps.audit.chain import canonical_json, line_hash
    from apps.audit.export_signing import ExportRefused, sign_export
    from apps.audit.exports import audit_export, verify_export

    record(2)
    pin = os.environ["RAG_AUDIT_PIN"]
    export = audit_export(events=AuditEvent.objects.all(), filters={}, exported_by=compliance_officer)
    assert verify_export(export.content, trusted_public_key=pin) == []
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    lines = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    forged = lines[0]
    forged["body"] = {**forged["body"], "payload": {"question": "who approved the transfer?", "answer": "nobody"}}
    forged.pop("readable", None)
    forged["hash"] = line_hash(forged)  # self-consistent, as a forger would make it
    files["events.jsonl"] = "".join(canonical_json(line) + "\n" for line in lines).encode()
    signed = json.loads(files["manifest.json"])
    request = {k: signed["manifest"][k] for k in ("exported_at", "exported_by", "filters", "files")}
    request["files"] = {**request["files"], "events.jsonl": hashlib.sha256(files["events.jsonl"]).hexdigest()}
    ranges = [[lines[0]["body"]["sequence"], lines[-1]["body"]["sequence"]]]
    text, signature, public_hex = sign_export(request, ranges)  # what the oracle now gives
    files["manifest.json"] = json.dumps({"manifest": json.loads(text), "signature": signature,
                                         "public_key": public_hex}).encode()
    problems = verify_export(_zip(files), trusted_public_key=pin)
    assert any("not the ones the signer read" in p for p in problems), problems
    # The former oracle's output: a manifest signed over its raw text.
    legacy = {**json.loads(text), "format": "rag-audit-export/1"}
    raw_signature = signing.load_private_key().sign(canonical_json(legacy).encode()).hex()
    files["manifest.json"] = json.dumps({"manifest": legacy, "signature": raw_signature, "public_key": public_hex}).encode()
    assert any("signed any text" in p for p in verify_export(_zip(files), trusted_public_key=pin))
    with pytest.raises(ExportRefused):
        sign_export({**request, "count": 1}, ranges)
    with pytest.raises(ExportRefused):
        sign_export(request, [[1, 99]])  # events that are not there


@pytest.mark.django_db
def test_a_forged_head_naming_an_attacker_key_is_refused_and_does_not_stop_the_signer():
    """The review's repro: a head with ``next_public_key`` signed by the real key over raw
    text (what the old oracle gave any broker client), inserted as the application role.
    The attacker's key is not trusted, the attacker's next head fails the pin, and the
    signer keeps signing over the real chain, linked to its own previous head."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from apps.audit import signing
    from apps.audit.chain import canonical_json

    record(2)
    real = audit_checkpoint_create()
    attacker = Ed25519PrivateKey.generate()
    attacker_hex = signing.public_key_hex(attacker.public_key())
    statement = {**json.loads(real.statement), "format": "rag-audit-checkpoint/2", "number": 2, "previous": real.digest,
                 "time": timezone.now().isoformat(timespec="microseconds"), "next_public_key": attacker_hex}
    text = canonical_json(statement)
    signature = signing.load_private_key().sign(text.encode()).hex()  # the old oracle's signature
    digest = hashlib.sha256(text.encode()).hexdigest()
    AuditCheckpoint.objects.create(number=2, created_at=timezone.now(), last_sequence=statement["last_sequence"],
                                   head_hash=statement["head_hash"], event_count=statement["count"],
                                   previous_digest=real.digest, statement=text, digest=digest, signature=signature,
                                   key_id=statement["key_id"])
    third = {**statement, "number": 3, "previous": digest, "public_key": attacker_hex, "format": "rag-audit-checkpoint/3"}
    third.pop("next_public_key")
    third_text = canonical_json(third)
    AuditCheckpoint.objects.create(number=3, created_at=timezone.now(), last_sequence=third["last_sequence"],
                                   head_hash=third["head_hash"], event_count=third["count"], previous_digest=digest,
                                   statement=third_text, digest=hashlib.sha256(third_text.encode()).hexdigest(),
                                   signature=attacker.sign(signing.HEAD_DOMAIN + third_text.encode()).hex(),
                                   key_id=signing.key_id(attacker_hex))
    record(1)
    head = audit_checkpoint_create()  # not stopped by the forged rows
    assert head.number == 4 and head.previous_digest == real.digest
    report = audit_verify_all()
    assert not report.ok
    assert any("signed head 2" in p and "not trusted" in p for p in report.problems), report.problems
    assert any("signed head 3 (database): not signed by the pinned key" in p for p in report.problems), report.problems
    assert report.head_sequence == 3 and report.checkpoints_checked >= 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.slow
def test_the_real_signer_runs_only_its_own_tasks(tmp_path, settings):
    """Any broker client may route any task to queue ``audit``; the real signer process
    refuses every task but its own (a parse task never runs next to the key), and the
    old ``audit.sign`` is gone."""
    from rag_platform.celery_app import app

    from tests.servers import database_url, start_worker, stop_process_group, wait_until

    log = tmp_path / "signer.log"
    signer = start_worker(database=database_url(connection.settings_dict), broker=os.environ["CELERY_BROKER_URL"],
                          log_path=log, concurrency=1, queues="audit", hostname="signer-guard@%h", RAG_AUDIT_SIGNER="1",
                          RAG_AUDIT_WITNESS_FILE=settings.AUDIT_WITNESS_FILE, RAG_AUDIT_CHECKPOINT_DIR=settings.AUDIT_CHECKPOINT_DIR)
    try:
        app.send_task("apps.ingestion.tasks.ingest_document", args=[987654], queue="audit")
        app.send_task("celery.accumulate", args=[1, 2], queue="audit")
        app.send_task("audit.sign", args=["any text"], queue="audit")
        wait_until(lambda: log.read_text().count("SignerRefusedTask") >= 2
                   and "unregistered task of type 'audit.sign'" in log.read_text(), timeout=120,
                   what="the signer to refuse the foreign tasks", log=log)
        checkpoint = app.send_task("audit.checkpoint", queue="audit")  # its own tasks still run
        wait_until(lambda: "audit.checkpoint[" in log.read_text() and "succeeded" in log.read_text(), timeout=60,
                   what="the signer's own task", log=log)
    finally:
        stop_process_group(signer)
    text = log.read_text()
    assert "ingest_document[" in text and "runs only ['audit.checkpoint', 'audit.sign_export', 'audit.verify'], " \
        "not 'apps.ingestion.tasks.ingest_document'" in text
    assert "not 'celery.accumulate'" in text and checkpoint.id


# --- M2: one malformed append ----------------------------------------------------------------

def _content(**changes) -> str:
    from apps.audit.services import prepare_events

    _, contents = prepare_events([{"event_type": EventType.SIGNED_IN, "outcome": Outcome.SUCCESS, "payload": {}}],
                           using="default")
    return contents[0] if not changes else json.dumps({**json.loads(contents[0]), **changes}, sort_keys=True,
                                                      separators=(",", ":"), ensure_ascii=False)


@pytest.mark.django_db
def test_a_non_canonical_append_is_refused_and_the_chain_stays_signable():
    """The review's M2 repro and its variants, as the application role: each is refused by
    audit_append, none leaves a row; the canonical text of the same event is accepted."""
    good = _content()
    stamp = json.loads(good)["created_at"]
    variants = {
        "offset +01:00": good.replace(stamp, timezone.localtime(timezone.now(), timezone.get_fixed_timezone(60))
                                      .isoformat(timespec="microseconds")),
        "a space": good.replace(',"event_type"', ', "event_type"'),
        "keys reordered": json.dumps(dict(reversed(json.loads(good).items())), separators=(",", ":")),
        "a key missing": json.dumps({k: v for k, v in json.loads(good).items() if k != "process"}, sort_keys=True,
                                    separators=(",", ":")),
        "an escaped character": good.replace('"auth.signed_in"', '"auth.sign\\u0065d_in"'),
        "actor_id as text": _content(actor_id="5"),
        "upper-case event id": _content(event_id="0F8FAD5B-D9CB-469F-A165-70867728950E"),
        "number form": _content(payload={"n": 1.50}).replace('"n":1.5', '"n":1.50'),
    }
    for name, text in variants.items():
        assert text != good, name
        assert "content refused" in refused("SELECT * FROM audit_append(ARRAY[%s])", [text]), name
    assert AuditEvent.objects.count() == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_append(ARRAY[%s])", [good])
    assert audit_checkpoint_create() is not None and audit_verify_all().ok


@pytest.mark.django_db
def test_what_the_application_writes_is_canonical_for_the_database():
    """Floats, large integers, escapes, non-ASCII keys in Python's canonical form are what
    the database's canonical check computes too, so real events are never refused."""
    import random

    rng = random.Random(23)
    floats = [rng.uniform(-1, 1) * 10 ** rng.randint(-8, 15) for _ in range(300)]
    floats += [0.1, 1.0, 1e-05, 0.0001, 123456789012345.67, 1234567890123456.7, 2.5e-300]
    payload = {"floats": floats, "ints": [0, -1, 2 ** 62, -(2 ** 63)], "text": 'tab\tnl\n"q" \\ \x01 \x7f é ☃ 😀',
               "ß": 1, "z": None, "a": [True, False, {}], "É": {"b": [], "a": ""}}
    event = audit_record(event_type=EventType.SETTINGS_CHANGED, outcome=Outcome.SUCCESS, payload=payload)
    assert AuditEvent.objects.get(sequence=event.sequence).payload["floats"] == floats
    assert audit_verify_all().ok


# --- M3: the trail's control events ----------------------------------------------------------

@pytest.mark.django_db
def test_control_events_and_holds_only_through_their_functions():
    """The application role cannot append audit.erased or legal-hold events, cannot insert
    or end a hold by itself, and a release writes its chained record in the same call."""
    from apps.audit.models import LegalHold
    from apps.audit.retention import legal_hold_place, legal_hold_release

    record(1)
    for event_type in ("audit.erased", "audit.legal_hold_placed", "audit.legal_hold_released",
                       "audit.retention_expired"):
        forged = _content(event_type=event_type, payload={"key_ids": [1], "hold_id": 1, "starts_at": "x"})
        assert "written only by the function" in refused("SELECT * FROM audit_append(ARRAY[%s])", [forged]), event_type
    assert "permission denied" in refused(
        "INSERT INTO audit_legalhold (reason, starts_at, ends_at, placed_by, placed_at) VALUES ('x', now(), now(), '', now())")
    assert "does not exist" in refused("SELECT audit_legal_hold_release(1::bigint)")
    hold = legal_hold_place(starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now(), reason="litigation",
                            placed_by=None)
    placed = AuditEvent.objects.get(event_type=EventType.LEGAL_HOLD_PLACED)
    assert placed.payload["hold_id"] == hold.id and placed.payload["reason"] == "litigation"
    other = _content(event_type="audit.legal_hold_released", payload={"hold_id": hold.id + 1})
    assert "naming hold" in refused("SELECT * FROM audit_legal_hold_release(%s, %s)", [hold.id, other])
    assert LegalHold.objects.get(id=hold.id).released_at is None
    legal_hold_release(hold=hold, released_by=None)
    released = AuditEvent.objects.get(event_type=EventType.LEGAL_HOLD_RELEASED)
    assert released.payload == {"hold_id": hold.id} and LegalHold.objects.get(id=hold.id).released_at is not None
    assert audit_verify_all().ok
