"""The answer path's steps other than streaming, without a model server (issue 25): permit,
retrieve and decide, fit the prompt, verify a draft, record once. Real database, real
embedding model; the model's endpoint is a loopback port nobody listens on, so counting and
the context window fall back as they do when vLLM is down."""

import io

import pytest

from apps.answering.generation import fit_prompt, verify
from apps.answering.llm import Completion
from apps.answering.models import AnswerKind
from apps.answering.steps import (
    EMPTY_QUESTION_MESSAGE,
    NO_ACCESS_MESSAGE,
    decide,
    disconnected,
    permit,
    retrieve,
    trace_start,
)
from apps.answering.trace import record
from apps.audit.models import AuditEvent, Outcome
from apps.audit.selectors import event_content
from apps.ingestion.services import document_ingest, document_upload
from rag_platform.embedded import free_loopback_port

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FINANCE = (b"# Payments\n\nPayments above 10,000 EUR require two approvals from the finance team. "
           b"Smaller payments need one approval from the budget owner.\n")
QUESTION = "How many approvals does a payment above 10,000 EUR need?"


@pytest.fixture
def no_model_server(settings):
    settings.LLM_BASE_URL = f"http://127.0.0.1:{free_loopback_port()}/v1"
    settings.LLM_PROMPT_PROFILE = "small"


@pytest.fixture
def payments(collection, corpus_admin):
    upload = document_upload(collection=collection, uploaded_by=corpus_admin, name="payments.md",
                             content=io.BytesIO(FINANCE), size=len(FINANCE))
    document_ingest(document_id=upload.document.id)
    return collection


def decided(member, question=QUESTION):
    trace = trace_start(user=member, question=question)
    for step in (permit, retrieve, decide):
        decision = step(trace)
        if decision.final:
            return trace, decision
    return trace, decision


def test_permit_refuses_a_user_without_collections_and_an_empty_question(no_model_server, outsider, member, payments):
    trace = trace_start(user=outsider, question=QUESTION)
    decision = permit(trace)
    assert decision.outcome == Outcome.NO_ACCESS and decision.answer == NO_ACCESS_MESSAGE
    empty = permit(trace_start(user=member, question="   "))
    assert empty.outcome == Outcome.REJECTED and empty.answer == EMPTY_QUESTION_MESSAGE == empty.reason
    assert not permit(trace_start(user=member, question=QUESTION)).final
    audit = trace.as_audit()
    assert audit["collections_searched"] == [] and "evidence" not in audit and "completion_tokens" not in audit


def test_retrieve_and_decide_choose_the_quotation_before_any_model(no_model_server, member, payments):
    trace, decision = decided(member)
    assert not decision.final
    assert [c.source.document_title for c in trace.citations] == ["payments.md"] and not any(c.cited for c in trace.citations)
    assert "two approvals" in trace.quotation.text and trace.quotation.text.endswith("[1]")
    audit = trace.as_audit()
    assert audit["answerability"]["answerable"] is True and audit["quotation"] == trace.quotation.text
    assert audit["evidence"][0]["sentence"] and "prompt_evidence" not in audit and audit["draft"] == ""


def test_decide_refuses_what_the_passages_never_mention(no_model_server, member, payments, settings):
    settings.RETRIEVAL_MAX_DISTANCE = 2.0  # retrieved: the evidence decides
    trace, decision = decided(member, "How long is the probationary period for new employees?")
    assert decision.outcome == Outcome.REFUSED and decision.kind == AnswerKind.NOT_STATED
    assert "probationary" in decision.reason and trace.quotation is None
    assert "quotation" not in trace.as_audit()


@pytest.mark.parametrize("draft, kind", [
    ("Payments above 10,000 EUR require two approvals from the finance team [1].", AnswerKind.VERIFIED),
    ("Payments above 10,000 EUR need no approval at all [1].", AnswerKind.QUOTATION),
    ("", AnswerKind.QUOTATION),
])
def test_verify_labels_a_draft_without_the_model(no_model_server, member, payments, draft, kind):
    trace, _ = decided(member)
    assert not fit_prompt(trace).final
    assert trace.prompt_evidence and trace.prompt_tokens_counted > 0
    trace.completion = Completion(draft, "smollm2-135m-instruct", 10, 12, 5, 2, "stop")
    trace.generated = True
    decision = verify(trace)
    assert decision.kind == kind and decision.outcome == Outcome.ANSWERED, decision
    if kind == AnswerKind.VERIFIED:
        assert decision.answer == draft and decision.cite == frozenset({1})
    else:
        assert decision.answer == trace.quotation.text and decision.reason and decision.cite == frozenset({1})
    audit = trace.as_audit(reason=decision.reason)
    assert audit["grounding"]["verified"] is (kind == AnswerKind.VERIFIED) and audit["completion_tokens"] == 12


def test_record_writes_the_trace_once(no_model_server, member, payments):
    trace, _ = decided(member)
    result = record(trace, disconnected(trace))
    assert result.outcome == Outcome.ERROR and result.history_id is not None
    payload = event_content(AuditEvent.objects.get(sequence=result.audit_sequence))
    assert payload["quotation"] == trace.quotation.text and payload["completion_tokens"] is None
    assert len(payload["retrieved"]) == len(trace.citations) and payload["error"] == result.error
    with pytest.raises(AssertionError):
        record(trace, disconnected(trace))
    assert AuditEvent.objects.filter(sequence__gte=result.audit_sequence).count() == 1
