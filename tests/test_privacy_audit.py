"""Need to know in the audit review: personal data masked in the list, the detail, the
exports and the API; a reveal needs a typed reason, is itself an event, and keeps passages
of collections the officer may not read masked. Test client, real database, real detector."""

import io
import json
import os
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.exports import verify_export
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Document
from tests.access_helpers import bearer
from tests.factories import CollectionFactory

ASKED = "Did Margaret Okafor at margaret.okafor@example.com change her IBAN?"
READABLE_PASSAGE = "The client wrote from margaret.okafor@example.com on 4 March."
SECRET_PASSAGE = "Ward note: call her daughter on +44 20 7123 4567, e-mail chloe.barker@example.org."


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")


@pytest.fixture
def asked(db, member, compliance_officer, corpus_admin):
    """A question event whose passages come from a collection the officer reads and one they do not."""
    readable = CollectionFactory(name="Client letters", created_by=corpus_admin)
    readable.reader_users.add(compliance_officer)
    closed = CollectionFactory(name="Clinical notes", created_by=corpus_admin)
    # Real document rows: a passage of a document that no longer exists is not kept at all.
    letters, notes = (Document.objects.create(collection=c, title=t, sha256=h * 64, size_bytes=10, file=f"x/{t}",
                                              status="indexed")
                      for c, t, h in ((readable, "letters.txt", "a"), (closed, "notes.txt", "b")))
    return audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member, payload={
        "question": ASKED, "collections_searched": [readable.id, closed.id],
        "answer": "Yes: margaret.okafor@example.com asked for the change [1].",
        "personal_data": {"PERSON": 1, "EMAIL_ADDRESS": 1},
        "evidence": [{"n": 1, "sentence": READABLE_PASSAGE, "score": 0.8},
                     {"n": 2, "sentence": SECRET_PASSAGE, "score": 0.5}],
        "retrieved": [
            {"n": 1, "chunk_id": 9001, "document_id": letters.id, "collection_id": readable.id, "page": 1, "score": 0.8,
             "cited": True, "text": READABLE_PASSAGE},
            {"n": 2, "chunk_id": 9002, "document_id": notes.id, "collection_id": closed.id, "page": 2, "score": 0.5,
             "cited": False, "text": SECRET_PASSAGE},
        ],
    })


VALUES = ("margaret.okafor@example.com", "Margaret Okafor", "7123 4567", "chloe.barker@example.org")


@pytest.mark.django_db
def test_list_and_detail_show_placeholders_not_values(client, compliance_officer, asked):
    client.force_login(compliance_officer)
    listing = client.get(reverse("audit:event_list")).content.decode()
    assert "&lt;EMAIL_ADDRESS&gt;" in listing and "Did &lt;PERSON&gt; at" in listing
    detail = client.get(reverse("audit:event_detail", args=[asked.sequence])).content.decode()
    for value in VALUES:
        assert value not in listing and value not in detail, value
    assert "&lt;PHONE_NUMBER&gt;" in detail and "personal data masked" in detail
    assert 'action="/audit/%d/reveal/"' % asked.sequence in detail and "csrfmiddlewaretoken" in detail


@pytest.mark.django_db
def test_reveal_needs_a_reason_and_is_recorded(client, compliance_officer, asked):
    client.force_login(compliance_officer)
    url = reverse("audit:event_reveal", args=[asked.sequence])
    assert client.get(url).status_code == 405
    refused = client.post(url, {"reason": "  "})
    assert refused.status_code == 400 and "Type why you need to see" in refused.content.decode()
    assert "margaret.okafor@example.com" not in refused.content.decode()
    assert not AuditEvent.objects.filter(event_type=EventType.REVEALED).exists()

    shown = client.post(url, {"reason": "Subject access request SAR-2025-117"})
    page = shown.content.decode()
    assert shown.status_code == 200 and shown["Cache-Control"] == "no-store"
    assert ASKED in page and READABLE_PASSAGE in page  # the question, and the passage the officer may read
    assert "+44 20 7123 4567" not in page and "chloe.barker@example.org" not in page  # the other collection's
    assert "masked even on reveal: you may not read this passage" in page
    reveal = AuditEvent.objects.get(event_type=EventType.REVEALED)
    assert reveal.actor_username == compliance_officer.username
    assert reveal.payload["sequence"] == asked.sequence and reveal.payload["reason"] == "Subject access request SAR-2025-117"
    assert reveal.payload["passages_kept_masked"] == ["2"]
    again = client.get(reverse("audit:event_detail", args=[asked.sequence])).content.decode()
    assert "margaret.okafor@example.com" not in again  # for that response only


@pytest.mark.django_db
def test_reveal_checks_csrf_and_the_permission(compliance_officer, member, asked):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(compliance_officer)
    assert strict.post(reverse("audit:event_reveal", args=[asked.sequence]), {"reason": "a long enough reason"}).status_code == 403
    staff = Client()
    staff.force_login(member)
    assert staff.post(reverse("audit:event_reveal", args=[asked.sequence]), {"reason": "a long enough reason"}).status_code == 403
    assert not AuditEvent.objects.filter(event_type=EventType.REVEALED).exists()


@pytest.mark.django_db
def test_exports_and_the_api_are_masked_and_still_verify(client, compliance_officer, asked):
    # An event stored in the clear (not sealed) whose content carries personal data too.
    clear = audit_record(event_type=EventType.SETTINGS_CHANGED, outcome=Outcome.SUCCESS, actor=compliance_officer,
                         payload={"reason": "Asked by Margaret Okafor, margaret.okafor@example.com"})
    client.force_login(compliance_officer)
    response = client.get(reverse("audit:event_detail_export", args=[asked.sequence]))
    api = bearer(compliance_officer).get("/api/v1/audit/export", {"event_type": "question.asked"})
    whole = bearer(compliance_officer).get("/api/v1/audit/export", {"event_type": "settings.changed"})
    assert whole.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(whole.streaming_content) if whole.streaming else whole.content)) as archive:
        lines = [json.loads(x) for x in archive.read("events.jsonl").decode().splitlines()]
    clear_line = next(x for x in lines if x["body"]["sequence"] == clear.sequence)
    # In the clear: the masked payload replaces the body, the recorded content's hash keeps the link checkable.
    assert clear_line["masked"] is True and clear_line["content_sha256"]
    assert "<EMAIL_ADDRESS>" in clear_line["body"]["payload"]["reason"]
    assert "margaret.okafor@example.com" not in json.dumps(clear_line)
    assert api.status_code == 200
    for content in (response.content, b"".join(api.streaming_content) if api.streaming else api.content):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            jsonl = archive.read("events.jsonl").decode()
            csv_text = archive.read("events.csv").decode()
        for value in VALUES:
            assert value not in jsonl and value not in csv_text, value
        line = json.loads(jsonl.splitlines()[0])
        # Sealed: the hashed body keeps the ciphertext; the masked text is in "readable".
        assert "<EMAIL_ADDRESS>" in line["readable"]["question"] and "c" in line["body"]["payload"]["question"]
        assert "<EMAIL_ADDRESS>" in csv_text
        assert verify_export(content, trusted_public_key=os.environ["RAG_AUDIT_PIN"]) == []


@pytest.mark.django_db
def test_a_forged_masked_line_does_not_verify(client, compliance_officer, asked):
    clear = audit_record(event_type=EventType.SETTINGS_CHANGED, outcome=Outcome.SUCCESS, actor=compliance_officer,
                         payload={"reason": "Asked by Margaret Okafor, margaret.okafor@example.com"})
    client.force_login(compliance_officer)
    content = client.get(reverse("audit:event_detail_export", args=[clear.sequence])).content
    source = zipfile.ZipFile(io.BytesIO(content))
    line = json.loads(source.read("events.jsonl"))
    line["content_sha256"] = "0" * 64  # claims other recorded content
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w") as out:
        for name in source.namelist():
            out.writestr(name, json.dumps(line) + "\n" if name == "events.jsonl" else source.read(name))
    problems = verify_export(forged.getvalue(), trusted_public_key=os.environ["RAG_AUDIT_PIN"])
    assert any("content does not match its hash" in p for p in problems), problems
