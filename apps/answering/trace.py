"""What one question went through, step by step, and the one record written when it ends.

``AnswerTrace`` holds the state the answer steps (apps.answering.steps, .generation) share:
each step fills its own fields and returns a ``Decision``, either ``CONTINUE`` or the answer a
person gets (outcome, kind, text, reason). ``AnswerTrace.as_audit()`` is the question's audit
payload, built once from those fields: a field a step never reached is absent from it (an
auditor can tell "the model was not asked" from "the model wrote nothing"). ``record`` writes
the audit event and history row exactly once per question.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError

from apps.answering.answerability import Answerability
from apps.answering.evidence import Evidence
from apps.answering.grounding import Grounding
from apps.answering.llm import Completion
from apps.answering.models import AnswerKind, AskedQuestion
from apps.answering.profiles import Profile
from apps.answering.prompts import PROMPT_VERSION
from apps.answering.quotation import Quotation
from apps.answering.recording import UNRECORDED_MESSAGE, answer_record
from apps.audit import held
from apps.audit.models import EventType, Outcome
from apps.retrieval.services import RetrievedChunk


@dataclass(frozen=True)
class Citation:
    number: int
    source: RetrievedChunk
    cited: bool  # the answer cites it as [number]


@dataclass(frozen=True)
class AnswerResult:
    outcome: str
    answer: str
    citations: list[Citation] = field(default_factory=list)
    audit_sequence: int | None = None
    error: str = ""
    history_id: int | None = None
    answer_kind: str = AnswerKind.NONE
    question: str = ""
    reason: str = ""  # why a quotation or "not stated" was shown instead of the model's answer
    draft: str = ""  # the model's unverified text (kept in the audit event)
    grounding_ms: float | None = None

    @property
    def cited(self) -> list[Citation]:
        return [c for c in self.citations if c.cited]


@dataclass(frozen=True)
class AnswerEvent:
    kind: str  # "sources" (data: list[Citation]), "token" (data: str), "done" (data: AnswerResult)
    data: object


@dataclass(frozen=True)
class Decision:
    """A step's verdict: ``CONTINUE`` (empty outcome), or what the person gets. ``cite``: the
    source numbers the answer cites (None leaves every citation uncited as shown)."""

    outcome: str
    kind: str = AnswerKind.NONE
    answer: str = ""
    error: str = ""
    reason: str = ""
    grounding_ms: float | None = None
    cite: frozenset[int] | None = None

    @property
    def final(self) -> bool:
        return bool(self.outcome)


CONTINUE = Decision("")


@dataclass
class AnswerTrace:
    user: object
    question: str
    search_query: str
    previous: AskedQuestion | None
    picked: list[int]
    searched_ids: list[int]
    permission_filter: dict
    profile: Profile
    personal_data: dict | None  # counts by type of the personal data the question names; None: off
    started: float = field(default_factory=time.monotonic)
    citations: list[Citation] = field(default_factory=list)
    completion: Completion = field(default_factory=lambda: Completion("", settings.LLM_MODEL, None, None, 0))
    # retrieve and decide
    query_vector: list[float] | None = None
    sources: list[RetrievedChunk] = field(default_factory=list)
    access: object = None  # ReadAccessWatch over the sources' collections
    ranked: list[Evidence] | None = None
    answerability: Answerability | None = None
    quotation: Quotation | None = None
    quotation_chosen: bool = False
    # prompt and stream
    model_question: str = ""
    prompt_evidence: list[Evidence] | None = None
    prompt_tokens_counted: int | None = None
    context_window: int | None = None
    generated: bool = False  # the stream ended normally: the model's figures are known
    completion_tokens_known: bool = False  # the stream stopped early (failure, revoked, disconnect)
    shown_before_revocation: list[int] | None = None
    # verify
    grounding: Grounding | None = None
    grounding_ms: float | None = None
    recorded: AnswerResult | None = None

    def _header(self) -> dict:
        return {
            "question": self.question,
            "search_query": self.search_query,
            "follow_up_of": self.previous.id if self.previous else None,
            "collections_requested": self.picked,
            "collections_searched": self.searched_ids,
            "permission_filter": self.permission_filter,
            "model": self.completion.model if self.generated else settings.LLM_MODEL,
            "model_sha256": settings.LLM_MODEL_SHA256,
            "llm_endpoint": settings.LLM_BASE_URL,
            "prompt_version": PROMPT_VERSION,
            "prompt_profile": self.profile.name,
            "streamed": True,
            "personal_data": self.personal_data,
        }

    def as_audit(self, *, reason: str = "") -> dict:
        """The audit payload (before recording adds the answer and the retrieved passages)."""
        payload = self._header()
        if self.ranked is not None:
            payload["evidence"] = [{"n": e.number, "sentence": e.sentence, "score": e.score} for e in self.ranked[:5]]
        if self.answerability is not None:
            payload["answerability"] = self.answerability.as_audit()
        if self.quotation_chosen:
            payload["quotation"] = self.quotation.text if self.quotation else ""
        if self.prompt_evidence is not None:
            payload.update(prompt_tokens_counted=self.prompt_tokens_counted, context_window=self.context_window,
                           prompt_evidence=[{"n": e.number, "sentence": e.sentence} for e in self.prompt_evidence])
        if self.shown_before_revocation is not None:
            payload.update(access_revoked=True, shown_before_revocation=self.shown_before_revocation)
        if self.completion_tokens_known or self.generated:
            payload["completion_tokens"] = self.completion.completion_tokens
        if self.generated:
            c = self.completion
            payload.update(prompt_tokens=c.prompt_tokens, llm_latency_ms=c.latency_ms,
                           first_token_ms=c.first_token_ms, finish_reason=c.finish_reason)
        if self.grounding is not None:
            payload.update(grounding=self.grounding.as_audit(), grounding_ms=self.grounding_ms)
        payload.update(latency_ms=int((time.monotonic() - self.started) * 1000), reason=reason,
                       draft=self.completion.text.strip())
        return payload


def record(trace: AnswerTrace, decision: Decision) -> AnswerResult:
    """Write the question's one audit event and history row for ``decision``; returns what the
    person gets. Called once per question (the driver checks ``trace.recorded``)."""
    assert trace.recorded is None, "a question is recorded once"
    if decision.cite is not None:
        trace.citations = [Citation(c.number, c.source, c.number in decision.cite) for c in trace.citations]
    try:
        held.flush()  # events this process could not write earlier go first
        sequence, history_id = answer_record(
            user=trace.user, outcome=decision.outcome, answer_kind=decision.kind, answer=decision.answer,
            error=decision.error, question=trace.question, search_query=trace.search_query, previous=trace.previous,
            picked=trace.picked, citations=trace.citations, payload=trace.as_audit(reason=decision.reason),
        )
    except DatabaseError as error:
        if not held.unavailable(error):
            raise
        return _withheld(trace, decision, error)
    trace.recorded = AnswerResult(
        decision.outcome, decision.answer, list(trace.citations), sequence, decision.error, history_id,
        decision.kind, trace.question, decision.reason, trace.completion.text.strip(), decision.grounding_ms,
    )
    return trace.recorded


def _withheld(trace: AnswerTrace, decision: Decision, error: DatabaseError) -> AnswerResult:
    """The database could not record the question: its event is held (apps.audit.held) and the
    person is shown no answer, only why: nothing is shown that the trail does not hold."""
    payload = trace.as_audit(reason=decision.reason)
    payload.update(answer="", answer_kind=AnswerKind.NONE, error=UNRECORDED_MESSAGE,
                   withheld={"outcome": decision.outcome, "answer_kind": decision.kind},
                   retrieved=[{"n": c.number, "chunk_id": c.source.chunk_id, "document_id": c.source.document_id,
                               "collection_id": c.source.collection_id, "page": c.source.page_number,
                               "score": c.source.score, "cited": False} for c in trace.citations])
    held.hold({"event_type": EventType.QUESTION_ASKED, "outcome": Outcome.ERROR, "actor": trace.user,
               "payload": payload}, error)
    trace.recorded = AnswerResult(Outcome.ERROR, "", [], None, UNRECORDED_MESSAGE, None, AnswerKind.NONE,
                                  trace.question, decision.reason, "", decision.grounding_ms)
    return trace.recorded
