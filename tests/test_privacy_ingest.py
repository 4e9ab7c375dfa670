"""Personal data at ingest, through the parse and embed steps (document_ingest: the sandboxed
parse and the embed batch the worker runs), per collection policy; and in questions."""


import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, Collection, Document
from tests import uploads
from tests.access_helpers import bearer

LETTER = b"""# Account change

Dear Jonathan Price, we received your request on 4 March 2025.

Please confirm the new IBAN GB82 WEST 1234 5698 7654 32 by e-mail to jonathan.price@example.com
or to accounts@examplebank.com, or call us on +44 20 7123 4567.

Payments above 10,000 EUR need two approvals.
"""


def ingest(collection, user, name="letter.md", data=LETTER):
    return uploads.ingest(collection, user, name, data)


def indexed_event(document):
    return AuditEvent.objects.get(event_type=EventType.DOCUMENT_INDEXED, payload__document_id=document.id)


@pytest.mark.django_db
def test_index_policy_keeps_the_text_and_records_counts(collection, corpus_admin, client):
    document = ingest(collection, corpus_admin)
    assert document.status == Document.Status.INDEXED, document.failure_reason
    expected = {"EMAIL_ADDRESS": 2, "IBAN_CODE": 1, "PHONE_NUMBER": 1}
    summary = {k: v for k, v in document.pii_summary.items() if k != "PERSON"}
    assert summary == expected and document.pii_summary.get("PERSON", 0) >= 1
    text = " ".join(Chunk.objects.filter(document=document).values_list("text", flat=True))
    assert "jonathan.price@example.com" in text and "GB82 WEST" in text
    event = indexed_event(document)
    assert event.payload["personal_data"] == document.pii_summary and event.payload["pii_policy"] == "index"
    assert "example.com" not in str(event.payload)  # counts, never values
    client.force_login(corpus_admin)
    page = client.get(reverse("corpus:collection_detail", args=[collection.id])).content.decode()
    assert "2 e-mail addresses" in page and "1 IBAN" in page and "1 phone number" in page


@pytest.mark.django_db
def test_mask_policy_stores_placeholders_and_keeps_the_file(collection, corpus_admin):
    collection.pii_policy = Collection.PiiPolicy.MASK
    collection.save()
    document = ingest(collection, corpus_admin)
    assert document.status == Document.Status.INDEXED, document.failure_reason
    chunks = list(Chunk.objects.filter(document=document))
    text = " ".join(c.text for c in chunks)
    for value in ("jonathan.price@example.com", "accounts@examplebank.com", "GB82 WEST", "7123 4567", "Jonathan Price"):
        assert value not in text, value
    assert "<EMAIL_ADDRESS>" in text and "<IBAN_CODE>" in text and "<PHONE_NUMBER>" in text and "<PERSON>" in text
    assert "two approvals" in text  # the rest is searchable as before
    assert not Chunk.objects.filter(document=document, search_vector__isnull=True).exists()
    assert "accounts@examplebank.com" in open(document.file.path, "rb").read().decode()  # the upload as uploaded
    assert indexed_event(document).payload["pii_policy"] == "mask"
    assert document.pii_summary["EMAIL_ADDRESS"] == 2


@pytest.mark.django_db
def test_refuse_policy_fails_the_document_naming_what_was_found(collection, corpus_admin):
    collection.pii_policy = Collection.PiiPolicy.REFUSE
    collection.save()
    document = ingest(collection, corpus_admin)
    assert document.status == Document.Status.FAILED and document.failure_code == "personal_data"
    assert document.failure_reason.startswith("Refused: this collection does not accept personal data; found ")
    assert "2 e-mail addresses" in document.failure_reason and "1 IBAN" in document.failure_reason
    assert not Chunk.objects.filter(document=document).exists()
    event = AuditEvent.objects.get(event_type=EventType.DOCUMENT_FAILED, payload__document_id=document.id)
    assert event.payload["personal_data"]["EMAIL_ADDRESS"] == 2 and "example.com" not in str(event.payload)
    clean = ingest(collection, corpus_admin, "clean.md", b"# Approvals\n\nPayments above 10,000 EUR need two approvals.\n")
    assert clean.status == Document.Status.INDEXED and clean.pii_summary == {}


@pytest.mark.django_db
def test_detection_switch_off_skips_index_collections_only(collection, corpus_admin, settings):
    settings.PII_DETECTION = False
    document = ingest(collection, corpus_admin)
    assert document.status == Document.Status.INDEXED and document.pii_summary is None
    assert indexed_event(document).payload["personal_data"] is None
    collection.pii_policy = Collection.PiiPolicy.REFUSE
    collection.save()
    refused = ingest(collection, corpus_admin, "other.md", LETTER + b"\nSecond copy.\n")
    assert refused.status == Document.Status.FAILED and refused.failure_code == "personal_data"


@pytest.mark.django_db
def test_policy_from_the_command_the_form_and_the_manager(client, corpus_admin, member):
    call_command("create_collection", "Clinical notes", "--readers", "staff", "--pii-policy", "refuse")
    assert Collection.objects.get(name="Clinical notes").pii_policy == "refuse"
    client.force_login(corpus_admin)
    response = client.post(reverse("corpus:collection_new"), {"name": "HR files", "description": "", "pii_policy": "mask"})
    hr = Collection.objects.get(name="HR files")
    assert response.status_code == 302 and hr.pii_policy == "mask"
    response = client.post(reverse("corpus:pii_policy_change", args=[hr.id]), {"pii_policy": "index"})
    hr.refresh_from_db()
    assert response.status_code == 302 and hr.pii_policy == "index"
    change = AuditEvent.objects.get(event_type=EventType.SETTINGS_CHANGED, payload__setting="pii_policy")
    assert change.payload["previous_value"] == "mask" and change.actor_username == corpus_admin.username
    client.force_login(member)  # not a manager of it
    assert client.post(reverse("corpus:pii_policy_change", args=[hr.id]), {"pii_policy": "mask"}).status_code == 404
    api = bearer(corpus_admin)
    assert api.post("/api/v1/collections", {"name": "Payroll", "pii_policy": "refuse"},
                    content_type="application/json").status_code == 201
    assert Collection.objects.get(name="Payroll").pii_policy == "refuse"
    assert api.post("/api/v1/collections", {"name": "Other", "pii_policy": "hide"},
                    content_type="application/json").status_code == 422


@pytest.mark.django_db
def test_question_event_records_counts_not_values(outsider):
    from apps.answering.services import answer_stream

    question = "Can you find the letter to Jonathan Price at jonathan.price@example.com?"
    events = list(answer_stream(user=outsider, question=question))
    assert events[-1].kind == "done"
    event = AuditEvent.objects.filter(event_type=EventType.QUESTION_ASKED).latest("sequence")
    assert event.payload["personal_data"]["EMAIL_ADDRESS"] == 1
    assert event.payload["personal_data"].get("PERSON", 0) >= 1
