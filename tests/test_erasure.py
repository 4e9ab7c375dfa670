"""Erasing a person or a document everywhere (issue 17): real database, real pg_dump, real
search and evidence; the model is unreachable here, so answers are the quoted passage (the
path test_answering.py's dead-LLM test takes), which is document text in the answer."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import zipfile
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from rag_platform.backup import pg_tool

from apps.answering.models import AskedQuestion
from apps.answering.services import ask_question
from apps.audit import crypto
from apps.audit.content import ErasedText
from apps.audit.exports import verify_export
from apps.audit.keys import ledger_key_ids
from apps.audit.models import AuditEvent, DataKey, EventType
from apps.audit.retention import legal_hold_place
from apps.audit.selectors import event_content
from apps.audit.services import audit_verify_chain
from apps.corpus.models import Document
from apps.ingestion.deletion import document_delete
from tests.access_helpers import bearer
from tests.factories import UserFactory
from tests.servers import database_url
from tests.uploads import ingest

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

VAULT = (b"# Vault\n\nThe Quillfeather vault is inspected by the night porter every fortnight.\n\n"
         b"Visitors sign the register at the front desk.\n")
# The first sentence is the asker's own (only what ends with "?" must be in the passages).
QUESTION = "I am asking for the Marrowgate annex. Who inspects the Quillfeather vault?"
UNIQUE_IN_QUESTION = "Marrowgate annex"
UNIQUE_IN_DOCUMENT = "porter every fortnight"
PIN = os.environ.get("RAG_AUDIT_PIN", "")


@pytest.fixture(autouse=True)
def _dead_llm(settings):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"  # closed: the answer is the quoted passage
    settings.RETRIEVAL_MAX_DISTANCE = 2.0
    settings.ANSWER_MIN_EVIDENCE_SCORE = 0.0  # the asker's own first sentence lowers the score; quote anyway


def tables_containing(text: str) -> set[str]:
    """The tables of a plain pg_dump of the test database whose rows contain ``text``."""
    dump = subprocess.run([pg_tool("pg_dump"), "--data-only", "--no-owner", "--dbname",
                           database_url(connection.settings_dict)], capture_output=True, text=True, check=True).stdout
    found = set()
    for block in re.split(r"^COPY ", dump, flags=re.MULTILINE)[1:]:
        table, _, rows = block.partition("\n")
        if text.lower() in rows.split("\n\\.\n")[0].lower():
            found.add(table.split(" ")[0])
    return found


def export_text(response) -> tuple[str, bytes]:
    data = b"".join(response.streaming_content) if response.streaming else response.content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(archive.read(n).decode() for n in ("events.jsonl", "events.csv")), data


@pytest.mark.slow
def test_erasing_a_person_leaves_their_questions_nowhere_and_the_chain_verifying(
        client, collection, corpus_admin, member, compliance_officer):
    ingest(collection, corpus_admin, "vault.md", VAULT)
    result = ask_question(user=member, question=QUESTION)
    assert result.answer_kind == "quotation" and UNIQUE_IN_DOCUMENT in result.answer, result
    assert bearer(member).get("/api/v1/search", {"q": f"{UNIQUE_IN_QUESTION} vault"}).status_code == 200  # sealed too
    event = AuditEvent.objects.get(sequence=result.audit_sequence)
    # At rest the content is ciphertext: the trail never held the question in the clear.
    for value in (event.payload["question"], event.payload["search_query"], event.payload["answer"],
                  event.payload["retrieved"][0]["text"], event.payload["evidence"][0]["sentence"]):
        assert crypto.is_sealed(value), value
    assert event_content(event)["question"] == QUESTION
    assert tables_containing(UNIQUE_IN_QUESTION) == {"public.answering_askedquestion"}  # the history only
    assert "audit_auditevent" not in str(tables_containing(UNIQUE_IN_DOCUMENT))

    client.force_login(compliance_officer)
    response = client.post(reverse("answering:erase", args=["user"]),
                           {"subject": "member", "reason": "GDPR Art. 17 request 118", "confirm": "on"})
    assert response.status_code == 302, response.content.decode()[-2000:]

    assert tables_containing(UNIQUE_IN_QUESTION) == set()
    assert not AskedQuestion.objects.filter(user=member).exists()
    content = event_content(AuditEvent.objects.get(sequence=result.audit_sequence))
    for erased in (content["question"], content["search_query"], content["answer"]):
        assert isinstance(erased, ErasedText) and "by compliance (GDPR Art. 17 request 118)" in erased
    assert UNIQUE_IN_DOCUMENT in content["retrieved"][0]["text"]  # the document's own key is intact
    erasure = AuditEvent.objects.get(event_type=EventType.ERASED)
    assert erasure.actor_username == "compliance" and erasure.payload["username"] == "member"
    assert erasure.payload["reason"] == "GDPR Art. 17 request 118" and erasure.payload["key_ids"]
    assert set(erasure.payload["key_ids"]) <= ledger_key_ids()
    assert not DataKey.objects.filter(id__in=erasure.payload["key_ids"]).exists()

    page = client.get(reverse("audit:event_detail", args=[result.audit_sequence])).content.decode()
    assert "erased on" in page and "GDPR Art. 17 request 118" in page and UNIQUE_IN_QUESTION not in page
    assert reverse("answering:erase", args=["document"]) + "?subject=" in page  # the officer's way to the form
    listing = client.get(reverse("audit:event_list")).content.decode()
    assert UNIQUE_IN_QUESTION not in listing
    for response in (client.get(reverse("audit:event_export")),
                     bearer(compliance_officer).get("/api/v1/audit/export", {"event_type": "question.asked"})):
        assert response.status_code == 200
        text, data = export_text(response)
        assert UNIQUE_IN_QUESTION not in text and "erased on" in text
        assert verify_export(data, trusted_public_key=PIN) == []
    assert audit_verify_chain().ok
    call_command("audit_verify", stdout=io.StringIO())  # raises CommandError if anything does not verify


@pytest.mark.slow
def test_erasing_a_document_removes_its_text_from_every_table_and_export(client, collection, corpus_admin, member,
                                                                        compliance_officer):
    document = ingest(collection, corpus_admin, "vault.md", VAULT)
    result = ask_question(user=member, question=QUESTION)
    assert UNIQUE_IN_DOCUMENT in result.answer
    assert {"public.corpus_chunk", "public.answering_askedquestion"} <= tables_containing(UNIQUE_IN_DOCUMENT)
    out = io.StringIO()
    call_command("erase_document", str(document.id), reason="records order 2026-14", by="compliance", stdout=out)
    assert "1 version(s) deleted" in out.getvalue()

    assert tables_containing(UNIQUE_IN_DOCUMENT) == set()
    assert not Document.objects.filter(id=document.id).exists()
    row = AskedQuestion.objects.get(user=member)
    assert row.answer == "" and "erased" in row.error and row.question == QUESTION  # the person's own question stays
    content = event_content(AuditEvent.objects.get(sequence=result.audit_sequence))
    assert content["question"] == QUESTION
    assert isinstance(content["retrieved"][0]["text"], ErasedText) and "records order 2026-14" in content["retrieved"][0]["text"]
    assert isinstance(content["answer"], ErasedText)  # it quoted the document
    deleted = AuditEvent.objects.get(event_type=EventType.DOCUMENT_DELETED)
    assert deleted.payload["passages_erased"] is True and deleted.payload["reason"] == "records order 2026-14"
    client.force_login(compliance_officer)
    text, data = export_text(client.get(reverse("audit:event_export")))
    assert UNIQUE_IN_DOCUMENT not in text and verify_export(data, trusted_public_key=PIN) == []
    page = client.get(reverse("audit:event_detail", args=[result.audit_sequence])).content.decode()
    assert UNIQUE_IN_DOCUMENT not in page and "records order 2026-14" in page
    assert audit_verify_chain().ok


def test_a_legal_hold_refuses_the_erasure_and_keeps_passages_of_a_deleted_document(client, collection, corpus_admin,
                                                                                   member, compliance_officer):
    document = ingest(collection, corpus_admin, "vault.md", VAULT)
    result = ask_question(user=member, question=QUESTION)
    now = timezone.now()
    hold = legal_hold_place(starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1),
                            reason="Litigation 42", placed_by=compliance_officer)
    keys_before = set(DataKey.objects.values_list("id", flat=True))

    with pytest.raises(CommandError, match=f"legal hold #{hold.id} “Litigation 42”"):
        call_command("erase_user", "member", reason="GDPR request")
    with pytest.raises(CommandError, match="Litigation 42"):
        call_command("erase_document", str(document.id), reason="records order")
    client.force_login(compliance_officer)
    response = client.post(reverse("answering:erase", args=["user"]),
                           {"subject": "member", "reason": "GDPR request", "confirm": "on"})
    assert response.status_code == 409 and "Litigation 42" in response.content.decode()
    assert set(DataKey.objects.values_list("id", flat=True)) == keys_before
    assert AskedQuestion.objects.filter(user=member).exists() and Document.objects.filter(id=document.id).exists()
    assert not AuditEvent.objects.filter(event_type=EventType.ERASED).exists()

    # The database refuses too, whatever the application asks for.
    user_key = DataKey.objects.get(scope="user", subject_id=member.pk).id
    forged = json.dumps({"event_type": "audit.erased", "created_at": timezone.now().isoformat(), "outcome": "success",
                         "actor_id": None, "actor_username": "", "actor_roles": [], "payload": {"key_ids": [user_key]}})
    with pytest.raises(DatabaseError, match="legal hold"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_erase(%s::bigint[], %s)", [[user_key], forged])

    # An ordinary deletion still deletes the document, keeps its keys and says why.
    assert document_delete(document_id=document.id, actor=corpus_admin)
    assert not Document.objects.filter(id=document.id).exists()
    assert set(DataKey.objects.values_list("id", flat=True)) == keys_before
    deleted = AuditEvent.objects.get(event_type=EventType.DOCUMENT_DELETED)
    assert deleted.payload["passages_kept_for_legal_hold"] == [hold.id]
    assert UNIQUE_IN_DOCUMENT in event_content(AuditEvent.objects.get(sequence=result.audit_sequence))["retrieved"][0]["text"]


def test_only_compliance_officers_and_superusers_may_erase(client, member, corpus_admin, compliance_officer):
    url = reverse("answering:erase", args=["user"])
    for user in (member, corpus_admin):
        client.force_login(user)
        assert client.get(url).status_code == 403
        assert client.post(url, {"subject": "member", "reason": "x", "confirm": "on"}).status_code == 403
    client.force_login(compliance_officer)
    assert client.get(url + "?subject=member").status_code == 200
    for incomplete in ({"subject": "member", "reason": "", "confirm": "on"}, {"subject": "member", "reason": "why"}):
        assert client.post(url, incomplete).status_code == 200  # the form again, with its error
    assert client.post(url, {"subject": "nobody", "reason": "why", "confirm": "on"}).status_code == 409
    assert not AuditEvent.objects.filter(event_type=EventType.ERASED).exists()
    client.force_login(UserFactory(username="root", is_superuser=True))
    assert client.post(url, {"subject": "member", "reason": "why", "confirm": "on"}).status_code == 302
    assert AuditEvent.objects.get(event_type=EventType.ERASED).actor_username == "root"


def test_keys_are_destroyed_only_through_audit_erase_with_a_matching_event(member):
    from apps.audit.services import audit_record

    audit_record(event_type=EventType.QUESTION_ASKED, outcome="answered", actor=member, payload={"question": "q"})
    key = DataKey.objects.get(scope="user", subject_id=member.pk)
    assert bytes(key.wrapped) and key.master_key_id

    def refused(sql: str, params=None) -> str:
        with pytest.raises(DatabaseError) as error, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
        return str(error.value)

    assert "permission denied" in refused("DELETE FROM audit_datakey")
    assert "permission denied" in refused("UPDATE audit_datakey SET wrapped = ''::bytea")
    assert "permission denied" in refused("TRUNCATE audit_datakey")
    other = {"event_type": "audit.erased", "created_at": timezone.now().isoformat(), "outcome": "success",
             "actor_id": None, "actor_username": "", "actor_roles": [], "payload": {"key_ids": []}}
    assert "exactly the keys" in refused("SELECT * FROM audit_erase(%s::bigint[], %s)", [[key.id], json.dumps(other)])
    assert "audit.erased event" in refused("SELECT * FROM audit_erase(%s::bigint[], %s)",
                                           [[key.id], json.dumps({**other, "event_type": "question.asked"})])
    assert DataKey.objects.filter(id=key.id).exists() and audit_verify_chain().ok


@pytest.mark.slow
def test_with_the_model_the_draft_and_its_verdicts_need_the_shown_document_key_too(llm, collection, corpus_admin, member):
    """The real vLLM server answers (the ``llm`` fixture overrides the dead address above):
    the model's draft and every grounding verdict are sealed under the asker's key AND the
    shown document's, so deleting the document makes them unreadable too."""
    document = ingest(collection, corpus_admin, "payments.md",
                      b"# Payments\n\nPayments above 10,000 EUR require two approvals from the finance team.\n")
    question = "How many approvals does a 20,000 EUR payment need?"
    result = ask_question(user=member, question=question)
    assert result.draft, result
    event = AuditEvent.objects.get(sequence=result.audit_sequence)
    user_key = DataKey.objects.get(scope="user", subject_id=member.pk).id
    document_key = DataKey.objects.get(scope="document", subject_id=document.id).id
    assert event.payload["draft"]["keys"] == sorted([user_key, document_key])
    assert event.payload["question"]["keys"] == [user_key]
    assert event.payload["retrieved"][0]["text"]["keys"] == [document_key]
    verdicts = event.payload["grounding"]["sentences"]
    assert verdicts and all(crypto.is_sealed(v["sentence"]) for v in verdicts)
    assert event_content(event)["draft"] == result.draft

    assert document_delete(document_id=document.id, actor=corpus_admin, reason="superseded policy withdrawn")
    content = event_content(AuditEvent.objects.get(sequence=result.audit_sequence))
    assert content["question"] == question  # the asker's key alone still opens the question
    assert isinstance(content["draft"], ErasedText) and "superseded policy withdrawn" in content["draft"]
    assert all(isinstance(v["sentence"], ErasedText) for v in content["grounding"]["sentences"])
    assert audit_verify_chain().ok


def test_an_erasure_missing_from_the_ledger_is_added_by_audit_apply_erasures(member, settings):
    """The process may stop between the commit and the ledger append: the next start (or
    ``audit_apply_erasures``) copies the recorded erasure into the ledger."""
    from pathlib import Path

    from apps.audit.erasure import erase_keys
    from apps.audit.services import audit_record

    audit_record(event_type=EventType.QUESTION_ASKED, outcome="answered", actor=member, payload={"question": "q"})
    erasure = erase_keys(subjects=[("user", member.pk)], reason="GDPR request 9", actor=None, what={"username": "member"})
    Path(settings.AUDIT_ERASURE_LEDGER).unlink()
    assert ledger_key_ids() == set()
    out = io.StringIO()
    call_command("audit_apply_erasures", stdout=out)
    assert "0 restored key(s) destroyed again" in out.getvalue() and "1 erasure(s) added" in out.getvalue()
    assert ledger_key_ids() == set(erasure.key_ids)
    call_command("audit_apply_erasures", stdout=out)  # idempotent
    assert "0 erasure(s) added" in out.getvalue().splitlines()[-1]
