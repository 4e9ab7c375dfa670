"""The pages each role uses, through Django's test client against the real database."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, Document
from apps.ingestion.services import document_ingest
from tests.factories import PASSWORD

EXTERNAL_ASSET = re.compile(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", re.I)


def signed_in(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_login_page_loads_nothing_from_outside(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert not EXTERNAL_ASSET.search(response.content.decode())


@pytest.mark.django_db
def test_pages_require_sign_in(client):
    for name in ["answering:ask", "corpus:collection_list", "audit:event_list"]:
        response = client.get(reverse(name))
        assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.django_db
def test_corpus_admin_uploads_and_sees_status(client, corpus_admin, collection):
    signed_in(client, corpus_admin)
    upload = SimpleUploadedFile("rules.txt", b"Visitors must wear a badge at all times.\n", content_type="text/plain")
    response = client.post(reverse("ingestion:document_upload", args=[collection.id]), {"files": [upload]}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "rules.txt: queued for indexing" in page and "Queued" in page
    assert 'http-equiv="refresh"' in page  # progress refreshes itself while work is pending
    document = Document.objects.get(title="rules.txt")
    document_ingest(document_id=document.id)
    page = client.get(reverse("corpus:collection_detail", args=[collection.id])).content.decode()
    assert "Indexed" in page and 'http-equiv="refresh"' not in page


@pytest.mark.django_db
def test_refused_upload_shows_the_reason_to_the_admin(client, corpus_admin, collection):
    signed_in(client, corpus_admin)
    upload = SimpleUploadedFile("empty.txt", b"", content_type="text/plain")
    response = client.post(reverse("ingestion:document_upload", args=[collection.id]), {"files": [upload]}, follow=True)
    assert "empty.txt: the file is empty." in response.content.decode()


@pytest.mark.django_db
def test_staff_cannot_upload_or_read_the_audit_trail(client, member, collection):
    signed_in(client, member)
    upload = SimpleUploadedFile("x.txt", b"hello", content_type="text/plain")
    assert client.post(reverse("ingestion:document_upload", args=[collection.id]), {"files": [upload]}).status_code == 403
    assert client.get(reverse("audit:event_list")).status_code == 403
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_outsider_sees_neither_collection_nor_passage(client, corpus_admin, outsider, collection):
    signed_in(client, corpus_admin)
    client.post(reverse("ingestion:document_upload", args=[collection.id]),
                {"files": [SimpleUploadedFile("a.txt", b"The vault code changes monthly.\n")]})
    document_ingest(document_id=Document.objects.get().id)
    chunk = Chunk.objects.get()
    client.logout()
    signed_in(client, outsider)
    assert collection.name not in client.get(reverse("corpus:collection_list")).content.decode()
    assert client.get(reverse("corpus:collection_detail", args=[collection.id])).status_code == 404
    assert client.get(reverse("corpus:passage_detail", args=[chunk.id])).status_code == 404


@pytest.mark.django_db
def test_member_opens_a_cited_passage(client, corpus_admin, member, collection):
    signed_in(client, corpus_admin)
    client.post(reverse("ingestion:document_upload", args=[collection.id]),
                {"files": [SimpleUploadedFile("a.txt", b"The vault code changes monthly.\n")]})
    document_ingest(document_id=Document.objects.get().id)
    client.logout()
    signed_in(client, member)
    page = client.get(reverse("corpus:passage_detail", args=[Chunk.objects.get().id])).content.decode()
    assert "The vault code changes monthly." in page and 'aria-current="true"' in page


@pytest.mark.django_db
def test_ask_page_with_no_readable_collection_says_so(client, outsider):
    signed_in(client, outsider)
    response = client.post(reverse("answering:ask"), {"question": "Anything?"})
    assert "You have no collection to search yet" in response.content.decode()
    assert AuditEvent.objects.filter(event_type=EventType.QUESTION_ASKED, actor_username="outsider").count() == 1


@pytest.mark.django_db
def test_compliance_officer_reviews_the_trail(client, compliance_officer, outsider):
    signed_in(client, outsider)
    client.post(reverse("answering:ask"), {"question": "Who approves payments?"})
    client.logout()
    signed_in(client, compliance_officer)
    listing = client.get(reverse("audit:event_list"), {"event_type": EventType.QUESTION_ASKED}).content.decode()
    assert "Who approves payments?" in listing
    event = AuditEvent.objects.get(event_type=EventType.QUESTION_ASKED)
    detail = client.get(reverse("audit:event_detail", args=[event.sequence])).content.decode()
    assert event.hash in detail and "Who approves payments?" in detail


@pytest.mark.django_db
def test_document_actions_follow_the_collection_grants_not_the_role(client, corpus_admin, member, outsider, collection):
    """A staff member with an ingest grant uploads and retries; deleting needs manage; a
    reader gets a 403 saying which grant is missing; an outsider gets a 404."""
    from apps.corpus.services import collection_grant

    def post_upload(name):
        upload = SimpleUploadedFile(name, f"Note {name}: visitors sign in at reception.\n".encode(), content_type="text/plain")
        return client.post(reverse("ingestion:document_upload", args=[collection.id]), {"files": [upload]}, follow=True)

    signed_in(client, member)  # staff role, read grant only
    response = post_upload("read-only.txt")
    assert response.status_code == 403 and "ingest grant" in response.content.decode()

    collection_grant(collection=collection, user=member, level="ingest", granted_by=corpus_admin)
    response = post_upload("ingested.txt")
    assert response.status_code == 200 and "ingested.txt: queued for indexing." in response.content.decode()
    document = Document.objects.get(title="ingested.txt")
    assert b"Delete ingested.txt" not in response.content  # no button for what they may not do
    delete = reverse("ingestion:document_delete", args=[collection.id, document.id])
    assert client.post(delete).status_code == 403 and Document.objects.filter(id=document.id).exists()

    collection_grant(collection=collection, user=member, level="manage", granted_by=corpus_admin)
    assert client.post(delete).status_code == 302 and not Document.objects.filter(id=document.id).exists()

    signed_in(client, outsider)
    assert post_upload("outsider.txt").status_code == 404
    assert not Document.objects.filter(title="outsider.txt").exists()
