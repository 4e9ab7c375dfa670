"""The answer path's model steps, over an ``AnswerTrace``:

* ``fit_prompt``: the evidence the profile shows, cut to the model's context window (too
  long even so: the quotation, with the reason);
* ``stream_draft``: the model's draft, yielded as it is written (a generator whose return
  value is the step's ``Decision``); a failure quotes, a revoked grant withholds;
* ``verify``: the grounding verdict (apps.answering.verification): a verified answer, or the
  quotation with the reason.

``fit_prompt`` and ``verify`` need no model server (tests/test_answer_steps.py).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from contextlib import closing

from django.conf import settings

from apps.answering.evidence import Evidence
from apps.answering.llm import LLMUnavailable, chat_stream
from apps.answering.models import AnswerKind
from apps.answering.profiles import context_window
from apps.answering.prompts import NOT_STATED_REPLY, PromptDoesNotFit, build_messages, fit_to_window
from apps.answering.steps import NOT_STATED_MESSAGE, QUOTED_BECAUSE_LLM, quoted, withheld
from apps.answering.tokens import count_tokens
from apps.answering.trace import CONTINUE, AnswerEvent, AnswerTrace, Decision
from apps.answering.verification import shown_windows, verify_draft
from apps.audit.models import Outcome


def prompt_evidence(trace: AnswerTrace) -> list[Evidence]:
    """What the model is shown: whole passages in search order for the capable profile, the
    best evidence windows for the small one."""
    if trace.profile.name == "capable":
        return [Evidence(n, s.text) for n, s in enumerate(trace.sources, start=1)]
    return trace.ranked[: trace.profile.evidence_windows]


def fit_prompt(trace: AnswerTrace) -> Decision:
    try:
        window = context_window()
        trace.model_question, evidence, tokens = fit_to_window(
            trace.question, prompt_evidence(trace), count_tokens=count_tokens, window=window,
            max_answer_tokens=settings.LLM_MAX_TOKENS, profile=trace.profile.name,
        )
    except PromptDoesNotFit as error:
        return quoted(trace, Outcome.LLM_ERROR, str(error), error=f"{error}.{QUOTED_BECAUSE_LLM}")
    trace.prompt_evidence, trace.prompt_tokens_counted, trace.context_window = evidence, tokens, window
    return CONTINUE


def stream_draft(trace: AnswerTrace) -> Generator[AnswerEvent, None, Decision]:
    """Yield the draft's pieces as "token" events; stop when access to a source is lost."""
    try:
        # closing(): a client that goes away also ends the request to vLLM at once.
        messages = build_messages(trace.model_question, trace.prompt_evidence, trace.profile.name)
        with closing(chat_stream(messages, result=trace.completion)) as tokens:
            for text in tokens:
                if trace.access.lost():
                    break
                yield AnswerEvent("token", text)
    except LLMUnavailable as error:
        trace.completion_tokens_known = True
        if trace.access.lost(now=True):
            return withheld(trace)
        return quoted(trace, Outcome.LLM_ERROR, "the language model did not answer",
                      error=f"{error}{QUOTED_BECAUSE_LLM}")
    if trace.access.lost(now=True):  # before the sources are shown again with the answer
        return withheld(trace)
    trace.generated = True
    return CONTINUE


def verify(trace: AnswerTrace) -> Decision:
    """A draft every sentence of which the shown evidence supports is the answer; otherwise
    the quotation, with the first reason. The capable model's own "not stated" is a refusal."""
    draft = trace.completion.text.strip()
    if trace.profile.name == "capable" and draft.upper().startswith(NOT_STATED_REPLY):
        return Decision(Outcome.REFUSED, AnswerKind.NOT_STATED, NOT_STATED_MESSAGE,
                        reason="the model found no answer in the passages")
    checked = time.perf_counter()
    grounding, reason = verify_draft(
        draft, question=trace.question, windows=shown_windows(trace.prompt_evidence),
        quotation=trace.quotation.text if trace.quotation else "", min_overlap=settings.ANSWER_MIN_OVERLAP,
        cut_off=trace.completion.finish_reason == "length", extractive=trace.profile.name == "small",
    )
    trace.grounding, trace.grounding_ms = grounding, round((time.perf_counter() - checked) * 1000, 3)
    if grounding.verified and not reason:
        return Decision(Outcome.ANSWERED, AnswerKind.VERIFIED, draft, grounding_ms=trace.grounding_ms,
                        cite=frozenset(grounding.cited))
    return quoted(trace, Outcome.ANSWERED, reason, grounding_ms=trace.grounding_ms)
