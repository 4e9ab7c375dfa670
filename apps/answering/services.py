"""Ask a question: search -> evidence -> answerable? -> LLM (streamed) -> grounding check.

A person gets one of three things and can see which (``AnswerKind``):

* a **verified answer**: the model's answer, every sentence of which cites a passage the
  model was shown and is supported by it (apps.answering.grounding);
* a **quotation**: when the model's answer fails the check (or the model is down), the
  passage sentences that answer, verbatim, with their citation;
* **not stated in your documents**, with the closest passages, when no evidence sentence
  carries what the question asks for (apps.answering.answerability).

``answer_stream`` is the one implementation; it yields the sources, the model's draft as it
is generated (shown marked unverified), then the finished result. ``ask_question`` consumes
it whole. It is a driver over named steps (permit; retrieve and decide in
apps.answering.steps; prompt, stream and verify in apps.answering.generation), each of which
fills its part of an ``AnswerTrace`` and returns a ``Decision``. Every question, refusal and
error writes exactly one audit event (and one history row, apps.answering.trace.record) when
the stream ends: normally, on an LLM failure, or when the client goes away.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from apps.answering.generation import fit_prompt, stream_draft, verify
from apps.answering.steps import (  # noqa: F401 (the messages are part of this module's interface)
    ACCESS_REVOKED_MESSAGE,
    CLOSEST_PASSAGES,
    DISCONNECTED_MESSAGE,
    EMPTY_QUESTION_MESSAGE,
    MAX_QUESTION_CHARACTERS,
    NO_ACCESS_MESSAGE,
    NO_WORDS_MESSAGE,
    NOT_FOUND_MESSAGE,
    NOT_STATED_MESSAGE,
    QUOTED_BECAUSE_LLM,
    decide,
    disconnected,
    failed,
    permit,
    question_problem,
    retrieve,
    standalone_query,
    trace_start,
)
from apps.audit import held
from apps.answering.trace import AnswerEvent, AnswerResult, Citation, Decision, record  # noqa: F401


def ask_question(
    *, user, question: str, collection_ids: Sequence[int] | None = None, follow_up_of: int | None = None
) -> AnswerResult:
    """Answer from the collections the user may read. Writes exactly one audit event."""
    result = None
    for event in answer_stream(user=user, question=question, collection_ids=collection_ids, follow_up_of=follow_up_of):
        if event.kind == "done":
            result = event.data
    assert isinstance(result, AnswerResult)
    return result


def answer_stream(
    *, user, question: str, collection_ids: Sequence[int] | None = None, follow_up_of: int | None = None
) -> Iterator[AnswerEvent]:
    """Yield ("sources", citations) once passages are found, ("token", text) while the model
    writes, and ("done", AnswerResult) last. The first step that decides ends the question;
    it is recorded once, also when the client goes away or a step raises."""
    trace = trace_start(user=user, question=question, collection_ids=collection_ids, follow_up_of=follow_up_of)
    try:
        decision = permit(trace)
        if not decision.final:
            decision = retrieve(trace)
        if not decision.final:
            yield AnswerEvent("sources", list(trace.citations))
            decision = decide(trace)
        if not decision.final:
            decision = fit_prompt(trace)
        if not decision.final:
            decision = yield from stream_draft(trace)
        if not decision.final:
            decision = verify(trace)
        yield AnswerEvent("done", record(trace, decision))
    except GeneratorExit:
        if trace.recorded is None:
            record(trace, disconnected(trace))
        raise
    except Exception as error:
        if trace.recorded is None:
            result = record(trace, failed(error))
            if held.unavailable(error):  # the database went away: a clear message, not a broken stream
                yield AnswerEvent("done", result)
                return
        raise

