import psycopg
import pytest
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError

from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.services import audit_record, audit_verify_chain
from tests.db_roles import OWNER, SUPERUSER, as_role, as_superuser


def record(n: int = 3):
    return [
        audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, payload={"question": f"q{i}", "score": 0.1 * i})
        for i in range(n)
    ]


@pytest.mark.django_db
def test_events_form_a_gap_free_chain_that_verifies(member):
    events = record(3) + [audit_record(event_type=EventType.COLLECTION_CREATED, outcome=Outcome.SUCCESS, actor=member)]
    assert [e.sequence for e in events] == [1, 2, 3, 4]
    assert events[1].prev_hash == events[0].hash
    assert events[3].actor_username == "member" and events[3].actor_roles == ["staff"]
    report = audit_verify_chain()
    assert report.ok and report.events_checked == 4


@pytest.mark.django_db
@pytest.mark.parametrize("statement", [
    "UPDATE audit_auditevent SET outcome = 'refused'",
    "DELETE FROM audit_auditevent",
])
def test_database_rejects_update_and_delete(statement):
    record(2)
    with pytest.raises((InternalError, ProgrammingError), match="permission denied"):  # the application role
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("statement", [
    "UPDATE audit_auditevent SET outcome = 'refused'",
    "DELETE FROM audit_auditevent",
])
def test_the_trigger_binds_the_owner_too(statement):
    record(2)
    with pytest.raises(psycopg.Error, match="append-only"):
        as_role(OWNER, statement)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_edit_by_a_superuser_who_bypasses_the_trigger_is_detected():
    events = record(3)
    as_role(SUPERUSER,  # what a database superuser could do
            "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only",
            "UPDATE audit_auditevent SET payload = jsonb_set(payload, '{question}', '\"edited\"') WHERE sequence = 2",
            "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
    report = audit_verify_chain()
    assert not report.ok
    assert report.first_bad_sequence == events[1].sequence
    assert "hash" in report.problem


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_deleted_event_is_detected():
    record(3)
    as_superuser("DELETE FROM audit_auditevent WHERE sequence = 2")
    report = audit_verify_chain()
    assert not report.ok and report.first_bad_sequence == 2


@pytest.mark.django_db
def test_a_batch_of_events_extends_the_chain_like_single_events(corpus_admin):
    from apps.audit.services import audit_record_many

    first = audit_record(event_type=EventType.DOCUMENT_UPLOADED, outcome=Outcome.SUCCESS, actor=corpus_admin, payload={"n": 0})
    batch = audit_record_many([
        {"event_type": EventType.DOCUMENT_INDEXED, "outcome": Outcome.SUCCESS, "actor": corpus_admin, "payload": {"n": n}}
        for n in (1, 2, 3)
    ])
    last = audit_record(event_type=EventType.DOCUMENT_DELETED, outcome=Outcome.SUCCESS, actor=None, payload={"n": 4})
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == [first.sequence + i for i in range(5)]
    assert [e.sequence for e in batch] == [first.sequence + 1, first.sequence + 2, first.sequence + 3]
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:]))
    assert all(e.actor_username == corpus_admin.username and e.actor_roles for e in batch)
    assert last.prev_hash == batch[-1].hash and len({e.event_id for e in events}) == 5
    assert audit_verify_chain().ok
