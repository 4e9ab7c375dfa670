"""The whole path, real at every step: upload through the web UI, a Celery worker over the
broker indexes into PostgreSQL + pgvector, a question through the web UI is answered by the
vLLM server with the packaged SmolLM2 model, and the answer and its audit event cite the
document."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.selectors import event_content
from apps.audit.services import audit_verify_chain
from apps.corpus.models import Document
from tests.factories import PASSWORD
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SAMPLES = Path(__file__).resolve().parents[1] / "sample_corpus"


def test_question_is_answered_by_vllm_with_a_citation_to_the_document(
    client, settings, vllm_base_url, worker, corpus_admin, member, collection
):
    base_url, model = vllm_base_url
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_MODEL_SHA256 = base_url, model.served_name, model.sha256
    sample = next(q for q in json.loads((SAMPLES / "questions.json").read_text()) if q["expected_document"].endswith(".docx"))

    client.login(username=corpus_admin.username, password=PASSWORD)
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(SAMPLES.iterdir()) if p.suffix in {".docx", ".pdf", ".md"}]
    client.post(reverse("ingestion:document_upload", args=[collection.id]), {"files": files})
    wait_until(
        lambda: not Document.objects.exclude(status=Document.Status.INDEXED).exists() and Document.objects.count() == 3,
        timeout=300, what="the worker to index the samples", log=worker,
    )
    client.logout()

    client.login(username=member.username, password=PASSWORD)
    page = client.post(reverse("answering:ask"), {"question": sample["question"]}).content.decode()

    event = AuditEvent.objects.filter(event_type=EventType.QUESTION_ASKED).latest("sequence")
    content = event_content(event)  # content fields are sealed at rest
    assert event.outcome == Outcome.ANSWERED, content
    answer = content["answer"]
    assert sample["expected_phrase"].lower() in answer.lower(), answer
    cited = [r for r in content["retrieved"] if r["cited"]]
    expected = Document.objects.get(title=sample["expected_document"])
    assert cited, f"the answer cites no source: {answer!r}"
    assert expected.id in {r["document_id"] for r in cited}, (answer, content["retrieved"])
    assert sample["expected_document"] in page and "(cited)" in page
    assert event.payload["model_sha256"] == model.sha256 and event.payload["llm_endpoint"] == base_url
    assert event.payload["completion_tokens"] > 0
    assert audit_verify_chain().ok
