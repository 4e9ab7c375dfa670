"""The compliance officer's review UI: request context, sign-in events, filters, search,
detail with passages, export with a signed manifest that verifies offline; reads audited."""

import io
import json
import os
import zipfile
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from apps.accounts.services import user_roles_set
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.selectors import event_content
from apps.audit.services import audit_record, audit_verify_chain
from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")


def question(user, text, collection_id, outcome=Outcome.ANSWERED):
    return audit_record(event_type=EventType.QUESTION_ASKED, outcome=outcome, actor=user,
                        payload={"question": text, "collections_searched": [collection_id], "answer": "42"})


@pytest.mark.django_db
def test_sign_in_failed_sign_in_and_sign_out_are_recorded_with_request_context(client, member):
    assert not client.login(username="member", password="s3cret-attempt")
    failed = AuditEvent.objects.get(event_type=EventType.SIGN_IN_FAILED)
    assert failed.payload["username"] == "member" and "s3cret" not in json.dumps(failed.payload)
    response = client.post(reverse("login"), {"username": "member", "password": PASSWORD},
                           HTTP_USER_AGENT="AuditTest/1.0", REMOTE_ADDR="10.9.8.7")
    assert response.status_code == 302 and response["X-Request-ID"]
    signed_in = AuditEvent.objects.get(event_type=EventType.SIGNED_IN)
    assert signed_in.actor_username == "member" and signed_in.actor_roles == ["staff"]
    assert signed_in.ip_address == "10.9.8.7" and signed_in.user_agent == "AuditTest/1.0"
    assert signed_in.request_id == response["X-Request-ID"]
    assert len(signed_in.session_hash) == 64 and client.session.session_key not in signed_in.session_hash
    client.post(reverse("logout"))
    signed_out = AuditEvent.objects.get(event_type=EventType.SIGNED_OUT)
    assert signed_out.session_hash == signed_in.session_hash
    assert audit_verify_chain().ok


@pytest.mark.django_db
def test_role_change_is_recorded(member, compliance_officer):
    user_roles_set(user=member, roles=["staff", "corpus_admin"], changed_by=compliance_officer, reason="cover")
    event = AuditEvent.objects.get(event_type=EventType.ROLE_CHANGED)
    assert event.payload["added"] == ["corpus_admin"] and event.actor_username == "compliance"


@pytest.mark.django_db
def test_staff_cannot_read_export_or_attest(client, member):
    client.force_login(member)
    for name in ("audit:event_list", "audit:event_export", "audit:attestation"):
        assert client.get(reverse(name)).status_code == 403
    for name in ("audit:event_detail", "audit:event_detail_export"):
        assert client.get(reverse(name, args=[1])).status_code == 403
    assert not AuditEvent.objects.filter(event_type__in=[EventType.AUDIT_VIEWED, EventType.AUDIT_EXPORTED]).exists()


@pytest.mark.django_db
def test_filters_and_question_search(client, compliance_officer, member, outsider):
    question(member, "What is the travel budget?", 7)
    question(outsider, "Who approves transfers?", 8, Outcome.REFUSED)
    old = question(member, "Old question about budget", 7)
    client.force_login(compliance_officer)
    url = reverse("audit:event_list")

    def shown(**params):
        page = client.get(url, params).content.decode()
        return [q for q in ("travel budget", "approves transfers", "Old question") if q in page]

    assert shown(q="budget") == ["travel budget", "Old question"]
    assert shown(actor="outsider") == ["approves transfers"]
    assert shown(collection="8") == ["approves transfers"]
    assert shown(outcome="refused") == ["approves transfers"]
    assert shown(event_type="question.asked", q="transfers") == ["approves transfers"]
    today = timezone.now().date()
    assert shown(date_from=(today + timedelta(days=1)).isoformat()) == []
    page = client.get(url, {"date_from": today.isoformat(), "date_to": today.isoformat()}).content.decode()
    assert len(shown(date_from=today.isoformat(), date_to=today.isoformat())) == 3, page
    viewed = AuditEvent.objects.filter(event_type=EventType.AUDIT_VIEWED, actor_username="compliance")
    from apps.audit.keys import (
        search_term_digest,  # the search term is kept as its keyed digest (review M7c)
    )

    assert viewed.count() == 8 and viewed.filter(payload__filters__q__hmac=search_term_digest("budget")).exists()
    # the search lists the older matching event too, linked to its own record
    assert reverse("audit:event_detail", args=[old.sequence]) in client.get(url, {"q": "budget"}).content.decode()


@pytest.mark.django_db
def test_list_shows_integrity_status(client, compliance_officer):
    call_command("audit_checkpoint")
    call_command("audit_verify")
    client.force_login(compliance_officer)
    page = client.get(reverse("audit:event_list")).content.decode()
    assert "Last signed checkpoint:" in page and "#1 at" in page
    assert "Last verification by hand:" in page and "never" not in page


@pytest.mark.django_db
def test_detail_shows_passages_cited_and_answer_and_is_audited(client, compliance_officer, member, collection):
    from apps.corpus.models import Chunk, Document

    document = Document.objects.create(collection=collection, title="policy.txt", sha256="a" * 64, size_bytes=10,
                                       file="x/policy.txt", status="indexed")
    chunk = Chunk.objects.create(document=document, collection=collection, ordinal=0,
                                 text="Transfers above 20,000 EUR need two approvals.",
                                 embedding=[0.0] * 384)
    event = audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member, payload={
        "question": "Who approves?", "answer": "Two approvers [1].", "collections_searched": [collection.id],
        "retrieved": [{"n": 1, "chunk_id": chunk.id, "document_id": document.id, "score": 0.9, "cited": True,
                       "document_sha256": "a" * 64}],
    })
    client.force_login(compliance_officer)
    page = client.get(reverse("audit:event_detail", args=[event.sequence])).content.decode()
    assert "Transfers above 20,000 EUR need two approvals." in page
    assert "as at the time" in page and ">cited<" in page and "Two approvers [1]." in page
    assert AuditEvent.objects.filter(event_type=EventType.AUDIT_VIEWED, payload__sequence=event.sequence).exists()


@pytest.mark.django_db
def test_export_is_signed_audited_and_verifies_offline(client, compliance_officer, member, tmp_path):
    question(member, "What is the travel budget?", 7)
    question(member, "Who approves transfers?", 8)
    client.force_login(compliance_officer)
    response = client.get(reverse("audit:event_export"), {"collection": "7"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response.streaming  # from the export's spooled file, not built in memory
    content = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        lines = archive.read("events.jsonl").decode().splitlines()
        csv_text = archive.read("events.csv").decode()
        manifest = json.loads(archive.read("manifest.json"))
    assert len(lines) == 1 and "travel budget" in lines[0] and "travel budget" in csv_text
    assert manifest["manifest"]["filters"]["collection"] == "7" and manifest["signature"]
    exported = AuditEvent.objects.get(event_type=EventType.AUDIT_EXPORTED)
    assert exported.actor_username == "compliance" and exported.payload["count"] == 1

    good = tmp_path / "export.zip"
    good.write_bytes(content)
    call_command("audit_verify", "--export", str(good), "--public-key", os.environ["RAG_AUDIT_PIN"])

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data.replace(b"travel budget", b"travel bonus") if name == "events.jsonl" else data)
    with pytest.raises(CommandError, match="does not match"):
        call_command("audit_verify", "--export", str(tampered), "--public-key", os.environ["RAG_AUDIT_PIN"])
    with pytest.raises(CommandError, match="different key"):
        call_command("audit_verify", "--export", str(good), "--public-key", "11" * 32)


@pytest.mark.django_db
def test_question_event_keeps_the_passage_text_and_document_version(collection, corpus_admin, member):
    """The audit trail shows what was retrieved as it was then, even after a new version."""
    import io

    from apps.answering.services import ask_question
    from apps.ingestion.services import document_ingest, document_upload

    data = b"# Vault\n\nThe vault code changes every month.\n"
    result = document_upload(collection=collection, uploaded_by=corpus_admin, name="vault.md", content=io.BytesIO(data), size=len(data))
    document_ingest(document_id=result.document.id)
    answer = ask_question(user=member, question="How often does the vault code change?")
    event = AuditEvent.objects.get(sequence=answer.audit_sequence)
    first = event_content(event)["retrieved"][0]  # sealed at rest (apps.audit.content)
    assert "vault code" not in json.dumps(event.payload["retrieved"])
    assert "vault code changes every month" in first["text"]
    assert first["document_sha256"] == result.document.sha256


@pytest.mark.django_db
def test_detail_shows_the_event_verified_and_exports_it_alone(client, compliance_officer, member):
    from apps.audit.checkpoints import audit_checkpoint_create
    from apps.audit.exports import verify_export

    first = question(member, "What is the travel budget?", 7)
    question(member, "Who approves transfers?", 8)
    audit_checkpoint_create()
    client.force_login(compliance_officer)
    page = client.get(reverse("audit:event_detail", args=[first.sequence])).content.decode()
    assert "Chain verified" in page and "Does not verify" not in page
    assert f"event #{first.sequence + 1} links to it" in page
    assert "#1 covers it" in page and "signature verifies" in page
    response = client.get(reverse("audit:event_detail_export", args=[first.sequence]))
    assert response.status_code == 200 and f"audit-event-{first.sequence}-" in response["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        lines = archive.read("events.jsonl").decode().splitlines()
        manifest = json.loads(archive.read("manifest.json"))["manifest"]
    assert len(lines) == 1 and "travel budget" in lines[0]
    assert manifest["filters"] == {"sequence": str(first.sequence)} and verify_export(response.content, trusted_public_key=os.environ["RAG_AUDIT_PIN"]) == []
    assert AuditEvent.objects.filter(event_type=EventType.AUDIT_EXPORTED, payload__count=1).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_detail_of_an_edited_event_says_it_does_not_verify(client, compliance_officer, member):
    from tests.db_roles import as_superuser

    edited = question(member, "What is the travel budget?", 7)
    as_superuser(f"UPDATE audit_auditevent SET payload = '{{\"question\": \"edited\"}}' WHERE sequence = {edited.sequence}")
    client.force_login(compliance_officer)
    page = client.get(reverse("audit:event_detail", args=[edited.sequence])).content.decode()
    assert "Chain verified" not in page and "Does not verify" in page and "edited" in page


@pytest.mark.django_db
def test_streamed_question_is_recorded_with_the_request_context(client, member):
    """The stream is read after the view returned; its audit event still names the request."""
    client.login(username=member.username, password=PASSWORD)  # reads no collection: answered at once
    response = client.post(reverse("answering:ask_stream"), {"question": "Who approves transfers?"},
                           HTTP_USER_AGENT="StreamTest/1.0", REMOTE_ADDR="10.9.8.6")
    assert b"event: done" in b"".join(response.streaming_content)
    event = AuditEvent.objects.get(event_type=EventType.QUESTION_ASKED)
    assert event.ip_address == "10.9.8.6" and event.user_agent == "StreamTest/1.0"
    assert event.request_id == response["X-Request-ID"] and len(event.session_hash) == 64
    assert audit_verify_chain().ok
