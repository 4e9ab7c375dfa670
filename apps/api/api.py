"""The REST API (/api/v1/): every endpoint authenticates a Bearer token and goes through the
corpus selectors (collections_readable_by / _ingestable_by / _manageable_by), as the web
views do. Anything a caller may not see answers 404 exactly like something that does not
exist, so ids cannot be probed."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI, Query, Router, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from apps.api.auth import TokenAuth
from apps.api.common import ERRORS, NOT_VISIBLE, paginate, visible_or_404
from apps.api.corpus_endpoints import collections_router, documents_router
from apps.api.models import ApiToken
from apps.api.schemas import (
    AskIn, AskOut, AuditExportQuery, PageIn, SearchHit, TokenOut,
)
from apps.api.services import api_token_revoke
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.selectors import (
    collections_readable_by,
)

api = NinjaAPI(
    title="Private document Q&A API",
    version="1",
    description="Ask, search, upload, manage collections and grants, export the audit trail. "
    "Authenticate with `Authorization: Bearer <token>` (create tokens at /account/tokens/).",
    auth=TokenAuth("ask"),  # the default; writing endpoints name the scope they need
    urls_namespace="api",
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": False}),
    docs_url="/docs",
    openapi_url="/openapi.json",
)


# --- Errors: always 4xx with a message, never a 500 for bad input -----------------------
@api.exception_handler(NinjaValidationError)
def _invalid(request, exc):
    return api.create_response(request, {"detail": _describe(exc.errors)}, status=422)


@api.exception_handler(ValidationError)
def _refused(request, exc):
    return api.create_response(request, {"detail": " ".join(exc.messages)}, status=400)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Not allowed."}, status=403)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return api.create_response(request, {"detail": "The request body is too large."}, status=413)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    response = api.create_response(
        request, {"detail": "Send a valid API token: Authorization: Bearer <token>."}, status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def _http_error(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


def _describe(errors) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "payload"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "Invalid request."


def _readable_ids(user, requested: list[int]) -> list[int]:
    """The requested collections, all of which the user must be able to read (else 404)."""
    if not requested:
        return []
    readable = set(collections_readable_by(user).filter(id__in=requested).values_list("id", flat=True))
    for collection_id in requested:
        if collection_id not in readable:
            raise Http404(NOT_VISIBLE.format(what=f"collection {collection_id}"))
    return sorted(set(requested))


# --- Ask and search ---------------------------------------------------------------------
ask_router = Router(tags=["ask"])


def _citation(c) -> dict:
    s = c.source
    return {"n": c.number, "cited": c.cited, "chunk_id": s.chunk_id, "document_id": s.document_id,
            "collection_id": s.collection_id, "title": s.document_title, "page": s.page_number,
            "section": s.section_title, "score": s.score, "excerpt": s.text[:240]}


@ask_router.post("/ask", response={200: AskOut, **ERRORS},
                 summary="Ask a question over the collections you may read",
                 description="JSON answer, or with `stream: true` server-sent events: `sources`, `token`..., `done`. "
                             "Writes exactly one audit event.",
                 openapi_extra={"responses": {200: {"description": "The answer (JSON), or its stream (SSE)", "content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/AskOut"}},
                     "text/event-stream": {"schema": {"description": "each event's data is JSON: sources, token, done"}}}}}})
def ask(request, payload: AskIn):
    from apps.answering.models import AskedQuestion
    from apps.answering.services import answer_stream, ask_question

    collection_ids = _readable_ids(request.user, payload.collection_ids)
    if payload.follow_up_of is not None:
        visible_or_404(AskedQuestion.objects.filter(user=request.user), "question", id=payload.follow_up_of)
    if not payload.question.strip():
        raise HttpError(422, "question: must not be blank")
    arguments = {"user": request.user, "question": payload.question, "collection_ids": collection_ids or None,
                 "follow_up_of": payload.follow_up_of}
    if payload.stream:
        # The same generator and SSE encoding as the web page (apps.answering).
        from apps.answering.views import ClosingStream

        response = StreamingHttpResponse(ClosingStream(answer_stream(**arguments)), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    result = ask_question(**arguments)
    request.question_recorded = True  # its event is written (or held): an error page adds none
    return {"outcome": result.outcome, "answer_kind": result.answer_kind, "answer": result.answer,
            "reason": result.reason, "error": result.error,
            "audit_sequence": result.audit_sequence, "history_id": result.history_id,
            "citations": [_citation(c) for c in result.citations]}


@ask_router.get("/search", response={200: list[SearchHit], **ERRORS},
                summary="Hybrid search over the passages you may read (audited)")
def search(request, q: str = Query(..., min_length=1, max_length=2000),
           collection_id: list[int] = Query(default_factory=list, max_length=100), k: int = Query(5, ge=1, le=50)):
    from apps.retrieval.services import chunks_search, search_filter_for

    if not q.strip():
        raise HttpError(422, "q: must not be blank")
    picked = _readable_ids(request.user, collection_id)
    results = chunks_search(user=request.user, query=q, collection_ids=picked or None, k=k)
    audit_record(
        event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED if results else Outcome.REFUSED,
        actor=request.user,
        payload={"question": q[:2000], "search_only": True, "collections_requested": picked,
                 "permission_filter": search_filter_for(user=request.user, collection_ids=picked or None).describe(),
                 "retrieved": [{"n": n, "chunk_id": r.chunk_id, "document_id": r.document_id, "page": r.page_number,
                                "score": r.score, "cited": False} for n, r in enumerate(results, start=1)]},
    )
    return [{"chunk_id": r.chunk_id, "document_id": r.document_id, "collection_id": r.collection_id,
             "title": r.document_title, "page": r.page_number, "section": r.section_title, "score": r.score,
             "text": r.text} for r in results]


# --- Tokens and audit ------------------------------------------------------------------
account_router = Router(tags=["account"])


@account_router.get("/tokens", response={200: list[TokenOut], **ERRORS}, auth=TokenAuth(""),
                    summary="Your API tokens (paged)")
def tokens_list(request, response: HttpResponse, page: Query[PageIn]):
    return paginate(request, response, ApiToken.objects.filter(user=request.user).order_by("-id"), page)


@account_router.delete("/tokens/{token_id}", response={204: None, **ERRORS}, auth=TokenAuth(""),
                       summary="Revoke one of your tokens")
def tokens_revoke(request, token_id: int):
    token = visible_or_404(ApiToken.objects.filter(user=request.user), "token", id=token_id)
    api_token_revoke(token=token, revoked_by=request.user)
    return 204, None


@account_router.get("/audit/export", response={200: bytes, **ERRORS}, tags=["audit"], auth=TokenAuth("audit"),
                    summary="Export the audit trail (compliance officers): zip of CSV, JSON Lines, signed manifest",
                    openapi_extra={"responses": {200: {"description": "A zip file",
                                                       "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}}})
def audit_export_endpoint(request, filters: Query[AuditExportQuery]):
    from apps.audit.exports import audit_export
    from apps.audit.selectors import EventFilters, audit_events_list

    if not request.user.has_perm("audit.view_auditevent"):
        raise PermissionDenied("Only compliance officers export the audit trail.")
    f = EventFilters(event_type=filters.event_type, outcome=filters.outcome, actor=filters.actor.strip(),
                     date_from=filters.date_from, date_to=filters.date_to, collection_id=filters.collection_id,
                     search=filters.q.strip())
    export = audit_export(events=audit_events_list(filters=f), filters=f.as_record(), exported_by=request.user)
    response = FileResponse(export.file, content_type="application/zip")  # streamed from the spooled file
    response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    return response


api.add_router("", ask_router)
api.add_router("/collections", collections_router)
api.add_router("/documents", documents_router)
api.add_router("", account_router)
