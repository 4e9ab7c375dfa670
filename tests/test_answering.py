"""Search, permission filter and every non-LLM outcome of asking; all against the real DB
and the real embedding model. The real LLM is in test_end_to_end.py."""

import io
import socket

import pytest

from apps.answering.services import NO_ACCESS_MESSAGE, NOT_FOUND_MESSAGE, ask_question
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.ingestion.services import document_ingest, document_upload
from apps.retrieval.services import chunks_search
from tests.factories import CollectionFactory

FINANCE = b"# Payments\n\nPayments above 10,000 EUR require two approvals from the finance team.\n"
HR = b"# Leave\n\nEmployees receive 28 days of paid annual leave per year.\n"


def ingest(collection, user, name, data):
    result = document_upload(collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data), size=len(data))
    return document_ingest(document_id=result.document.id)


@pytest.fixture
def indexed(collection, corpus_admin):
    """Finance collection (member may read) and an HR collection nobody but its admin reads."""
    ingest(collection, corpus_admin, "payments.md", FINANCE)
    hr = CollectionFactory(name="HR", created_by=corpus_admin)
    ingest(hr, corpus_admin, "leave.md", HR)
    return collection, hr


def closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends


@pytest.mark.django_db
def test_search_finds_the_relevant_passage_within_readable_collections(indexed, member):
    results = chunks_search(user=member, query="How many approvals does a large payment need?")
    assert results and results[0].document_title == "payments.md"
    assert all(r.collection_id == indexed[0].id for r in results)


@pytest.mark.django_db
def test_outsider_never_gets_a_chunk(indexed, outsider):
    for query in ["approvals for payments", "annual leave days", "finance team", "EUR"]:
        assert chunks_search(user=outsider, query=query) == []


@pytest.mark.django_db
def test_member_cannot_reach_other_collection_even_by_asking_for_it(indexed, member):
    finance, hr = indexed
    assert chunks_search(user=member, query="annual leave", collection_ids=[hr.id]) == []


@pytest.mark.django_db
def test_question_without_readable_collection_is_answered_clearly_and_audited(indexed, outsider):
    result = ask_question(user=outsider, question="How many approvals?")
    assert result.outcome == Outcome.NO_ACCESS and result.answer == NO_ACCESS_MESSAGE
    event = AuditEvent.objects.get(sequence=result.audit_sequence)
    assert event.event_type == EventType.QUESTION_ASKED and event.actor_username == "outsider"
    assert event.payload["collections_searched"] == []


@pytest.mark.django_db
def test_irrelevant_question_is_refused_not_guessed(indexed, member, settings):
    settings.RETRIEVAL_MAX_DISTANCE = 0.6
    result = ask_question(user=member, question="What is the boiling point of liquid nitrogen on Mars?")
    assert result.outcome == Outcome.REFUSED and result.answer == NOT_FOUND_MESSAGE
    assert AuditEvent.objects.get(sequence=result.audit_sequence).outcome == Outcome.REFUSED


@pytest.mark.django_db
def test_dead_llm_gives_a_clear_message_and_an_audited_failure(indexed, member, settings):
    settings.LLM_BASE_URL = f"http://127.0.0.1:{closed_loopback_port()}/v1"
    result = ask_question(user=member, question="How many approvals does a 20,000 EUR payment need?")
    assert result.outcome == Outcome.LLM_ERROR
    assert "not reachable" in result.error
    event = AuditEvent.objects.get(sequence=result.audit_sequence)
    assert event.outcome == Outcome.LLM_ERROR and event.payload["error"] == result.error
    assert event.payload["retrieved"][0]["document_id"] == result.citations[0].source.document_id
    assert event.payload["llm_endpoint"] == settings.LLM_BASE_URL
