import json
import logging

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.answering.forms import QuestionForm
from apps.answering.models import AnswerKind, AskedQuestion
from apps.answering.selectors import question_history
from apps.answering.services import AnswerEvent, AnswerResult, Citation, answer_stream, ask_question
from apps.audit.context import audit_context, current_context
from apps.corpus.selectors import collections_readable_by

log = logging.getLogger(__name__)

HISTORY_ON_PAGE = 10
STREAM_FAILED_MESSAGE = ("Something went wrong while answering, so no answer is shown. The question is in the audit "
                         "trail; try again, and tell your operator if it happens again.")
# What each kind of answer is called on the page (and in the streamed "done" event).
ANSWER_LABELS = {
    AnswerKind.VERIFIED: "Verified answer: every sentence is supported by the passage it cites.",
    AnswerKind.QUOTATION: "Quotation from your documents: the model's answer could not be verified, "
                          "so the passage that answers is shown word for word.",
    AnswerKind.NOT_STATED: "Not stated in your documents.",
}


def _page_context(request, form, result=None, follow_up=None):
    history = question_history(request.user, HISTORY_ON_PAGE)
    label = ANSWER_LABELS.get(result.answer_kind, "") if result else ""
    return {"form": form, "result": result, "readable": form.readable, "history": history, "follow_up": follow_up,
            "answer_label": label}


def _follow_up(request, value):
    """The asker's own earlier question ``value`` (an id from a link or the form), or None:
    a malformed or foreign id is no follow-up, never an error page."""
    try:
        question_id = int(value)
    except (TypeError, ValueError):
        return None
    if not 0 < question_id < 2**63:
        return None
    return AskedQuestion.objects.filter(user=request.user, id=question_id).first()


@login_required
def ask(request: HttpRequest) -> HttpResponse:
    """The page; without JavaScript the form posts here and gets the whole answer at once."""
    readable = list(collections_readable_by(request.user).order_by("name"))
    follow_up = _follow_up(request, request.GET.get("follow_up"))
    form = QuestionForm(request.POST or None, readable=readable,
                        initial={"follow_up_of": follow_up.id if follow_up else None})
    result = None
    if request.method == "POST" and form.is_valid():
        follow_up = _follow_up(request, form.cleaned_data["follow_up_of"])
        result = ask_question(
            user=request.user,
            question=form.cleaned_data["question"],
            collection_ids=form.cleaned_data["collections"] or None,
            follow_up_of=follow_up.id if follow_up else None,
        )
        request.question_recorded = True  # its event is written (or held): an error page adds none
    return render(request, "answering/ask.html", _page_context(request, form, result, follow_up))


def _citation_json(c: Citation) -> dict:
    return {
        "n": c.number,
        "cited": c.cited,
        "title": c.source.document_title,
        "page": c.source.page_number,
        "section": c.source.section_title,
        "score": c.source.score,
        "excerpt": c.source.text[:240],
        "url": reverse("corpus:passage_detail", args=[c.source.chunk_id]) + "#cited",
    }


def _sse(kind: str, data) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def _event_stream(events) -> bytes:
    """The SSE bytes of ``events``; a step that raises still ends the stream with a ``done``
    event that says so (the service has recorded it), never with a dropped connection."""
    try:
        yield from _encoded(events)
    except Exception:
        log.exception("the answer stream failed")
        yield _sse("done", {"outcome": "error", "answer_kind": AnswerKind.NONE, "label": "", "reason": "",
                            "answer": "", "error": STREAM_FAILED_MESSAGE, "audit_sequence": None,
                            "history_id": None, "sources": [], "follow_up_url": ""})


def _encoded(events) -> bytes:
    for event in events:
        if event.kind == "token":
            yield _sse("token", {"text": event.data})
        elif event.kind == "sources":
            yield _sse("sources", [_citation_json(c) for c in event.data])
        elif event.kind == "done":
            result: AnswerResult = event.data
            yield _sse("done", {
                "outcome": result.outcome,
                "answer_kind": result.answer_kind,
                "label": ANSWER_LABELS.get(result.answer_kind, ""),
                "reason": result.reason,
                "answer": result.answer,
                "error": result.error,
                "audit_sequence": result.audit_sequence,
                "history_id": result.history_id,
                "sources": [_citation_json(c) for c in result.citations],
                "follow_up_url": reverse("answering:ask") + f"?follow_up={result.history_id}" if result.history_id else "",
            })


class ClosingStream:
    """Iterates the SSE bytes and closes the answer generator when the response is closed
    (the client went away): its ``finally`` then writes the audit event.

    The server reads the stream after the view (and the audit middleware) returned, so the
    request's audit context (hashed session, IP, user agent, request id) is captured here
    and put back around every step: the question's audit event names who asked from where.
    """

    def __init__(self, events):
        self.events = events
        self.bytes = _event_stream(events)
        self.context = current_context()

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        with audit_context(self.context):
            return next(self.bytes)

    def close(self):
        with audit_context(self.context):
            self.bytes.close()
            self.events.close()


@login_required
@require_POST
def ask_stream(request: HttpRequest) -> HttpResponse:
    """Server-sent events: ``sources``, then ``token`` per generated piece, then ``done``."""
    readable = list(collections_readable_by(request.user))
    form = QuestionForm(request.POST, readable=readable)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    follow_up = _follow_up(request, form.cleaned_data["follow_up_of"])
    events: AnswerEvent = answer_stream(
        user=request.user,
        question=form.cleaned_data["question"],
        collection_ids=form.cleaned_data["collections"] or None,
        follow_up_of=follow_up.id if follow_up else None,
    )
    response = StreamingHttpResponse(ClosingStream(events), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a reverse proxy must not hold the stream back
    return response


@login_required
def history(request: HttpRequest) -> HttpResponse:
    questions = question_history(request.user, 200)
    return render(request, "answering/history.html", {"questions": questions})
