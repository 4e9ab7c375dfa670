"""Masked review leaks (security review 2026-12-07, M7): the question search is no oracle on
the unmasked text, a reveal keeps everything derived from a withheld collection masked,
titles and file names are masked, and the officer's search terms are not kept in the clear.
Test client, real database, real detector (Presidio)."""

import io
import json
import zipfile

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Document
from tests.factories import CollectionFactory

pytestmark = pytest.mark.django_db

EMAIL = "margaret.okafor@example.com"
ASKED = f"Did {EMAIL} change her IBAN?"
READABLE_PASSAGE = "The client wrote on 4 March about her account."
SECRET_PHONE = "+44 20 7123 4567"
SECRET_EMAIL = "chloe.barker@example.org"
SECRET_PASSAGE = f"Ward note: call her daughter on {SECRET_PHONE}, e-mail {SECRET_EMAIL}."


@pytest.fixture
def asked(member, compliance_officer, corpus_admin):
    """A question whose passages come from a collection the officer reads and one they do not;
    the withheld passage reached the prompt, the answerability reason and the draft too."""
    readable = CollectionFactory(name="Client letters", created_by=corpus_admin)
    readable.reader_users.add(compliance_officer)
    closed = CollectionFactory(name="Clinical notes", created_by=corpus_admin)
    letters = Document.objects.create(collection=readable, title=f"Letter from {EMAIL}", sha256="a" * 64,
                                      size_bytes=10, file="x/letters.txt", status="indexed")
    notes = Document.objects.create(collection=closed, title=f"Notes on {SECRET_EMAIL}", sha256="b" * 64,
                                    size_bytes=10, file="x/notes.txt", status="indexed")
    return audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member, payload={
        "question": ASKED, "search_query": ASKED, "collections_searched": [readable.id, closed.id],
        "answer": "She wrote on 4 March [1].", "reason": f"grounded; passage 2 names {SECRET_EMAIL}",
        "evidence": [{"n": 1, "sentence": READABLE_PASSAGE, "score": 0.8}],
        "prompt_evidence": [{"n": 1, "sentence": READABLE_PASSAGE}, {"n": 2, "sentence": SECRET_PASSAGE}],
        "answerability": {"answerable": True, "reason": f"the passages name {SECRET_PHONE}"},
        "retrieved": [
            {"n": 1, "chunk_id": 9001, "document_id": letters.id, "collection_id": readable.id, "page": 1,
             "score": 0.8, "cited": True, "text": READABLE_PASSAGE},
            {"n": 2, "chunk_id": 9002, "document_id": notes.id, "collection_id": closed.id, "page": 2,
             "score": 0.5, "cited": False, "text": SECRET_PASSAGE},
        ],
    })


def listed(client, sequence: int, **params) -> bool:
    page = client.get(reverse("audit:event_list"), params).content.decode()
    return f'href="{reverse("audit:event_detail", args=[sequence])}"' in page


def test_m7a_question_search_matches_the_masked_text_only(client, compliance_officer, asked):
    client.force_login(compliance_officer)
    assert listed(client, asked.sequence)  # the list shows it ...
    assert listed(client, asked.sequence, q="change her IBAN")  # ... and words left as they are find it
    for probe in ("margaret", "margaret.okafor@example", EMAIL):  # prefix probing recovers nothing
        assert not listed(client, asked.sequence, q=probe), probe
    assert listed(client, asked.sequence, q="Did <EMAIL_ADDRESS>")  # what the officer sees, they can search


def test_m7c_the_officers_search_terms_are_not_kept_in_the_clear(client, compliance_officer, asked):
    client.force_login(compliance_officer)
    client.get(reverse("audit:event_list"), {"q": "margaret okafor"})
    viewed = AuditEvent.objects.filter(event_type=EventType.AUDIT_VIEWED).order_by("-sequence").first()
    assert "okafor" not in json.dumps(viewed.payload).lower()
    assert viewed.payload["filters"]["q"]["hmac"]  # still comparable by whoever holds the master key
    export = client.get(reverse("audit:event_export"), {"q": "margaret okafor"})
    with zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content))) as archive:
        assert "okafor" not in archive.read("manifest.json").decode().lower()
    exported = AuditEvent.objects.get(event_type=EventType.AUDIT_EXPORTED)
    assert "okafor" not in json.dumps(exported.payload).lower()


def test_m7b_a_reveal_keeps_whatever_came_from_a_withheld_collection_masked(client, compliance_officer, asked):
    client.force_login(compliance_officer)
    page = client.post(reverse("audit:event_reveal", args=[asked.sequence]),
                       {"reason": "Subject access request SAR-2026-12"}).content.decode()
    assert ASKED in page and READABLE_PASSAGE in page  # the asker's own words and the readable passage
    for value in (SECRET_PHONE, SECRET_EMAIL, "7123 4567"):
        assert value not in page, value


def test_m7c_titles_and_file_names_are_masked_in_the_detail_and_exports(client, compliance_officer, member, asked):
    uploaded = audit_record(event_type=EventType.DOCUMENT_UPLOADED, outcome=Outcome.SUCCESS, actor=member,
                            payload={"collection_id": 1, "file_name": f"Complaint by {EMAIL}.txt",
                                     "title": f"Complaint by {EMAIL}"})
    client.force_login(compliance_officer)
    for sequence in (uploaded.sequence, asked.sequence):
        detail = client.get(reverse("audit:event_detail", args=[sequence])).content.decode()
        assert EMAIL not in detail and SECRET_EMAIL not in detail, sequence
    export = client.get(reverse("audit:event_detail_export", args=[uploaded.sequence])).content
    with zipfile.ZipFile(io.BytesIO(export)) as archive:
        assert EMAIL not in archive.read("events.jsonl").decode()
