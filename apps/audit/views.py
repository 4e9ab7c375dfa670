from datetime import date

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from apps.audit import ledger
from apps.audit.attestation import attestation_passed, attestation_report
from apps.audit.exports import audit_export
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.monitoring import integrity_monitor
from apps.audit.review import list_summary, reveal_problem, shown_passages, shown_payload, withheld_passages
from apps.audit.selectors import (
    EventFilters,
    audit_events_list,
    audit_integrity_status,
    event_content,
    events_content,
    passages_as_retrieved,
)
from apps.audit.services import audit_record
from apps.audit.signing import SigningKeyUnavailable
from apps.audit.verification import audit_event_verify


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filters(request: HttpRequest) -> EventFilters:
    collection = request.GET.get("collection", "").strip()
    return EventFilters(
        event_type=request.GET.get("event_type", ""),
        outcome=request.GET.get("outcome", ""),
        actor=request.GET.get("actor", "").strip(),
        date_from=_date(request.GET.get("date_from", "")),
        date_to=_date(request.GET.get("date_to", "")),
        collection_id=int(collection) if collection.isdigit() else None,
        search=request.GET.get("q", "").strip()[:200],
    )


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def event_list(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    page = Paginator(audit_events_list(filters=filters), 50).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)  # read before this view's own event is written
    # The one read path (sealed fields opened or marked erased), then need to know: what the
    # list shows, masked (apps.audit.review).
    for event, content in zip(page.object_list, events_content(page.object_list, viewer=request.user), strict=True):
        event.shown = list_summary(content)
    audit_record(event_type=EventType.AUDIT_VIEWED, outcome=Outcome.SUCCESS, actor=request.user,
                 payload={"view": "list", "filters": filters.as_record(), "page": page.number})
    return render(request, "audit/event_list.html", {
        "page": page, "filters": filters.as_dict(), "event_types": EventType.choices,
        "outcomes": Outcome.choices, "integrity": audit_integrity_status(), "monitor": integrity_monitor(),
        "verify_minutes": f"{settings.AUDIT_VERIFY_MINUTES:g}",
        "ledger_problems": ledger.read().problems,  # unauthenticated ledger lines (apps.audit.ledger)
    })


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def event_detail(request: HttpRequest, sequence: int) -> HttpResponse:
    event = get_object_or_404(AuditEvent, sequence=sequence)
    audit_record(event_type=EventType.AUDIT_VIEWED, outcome=Outcome.SUCCESS, actor=request.user,
                 payload={"view": "detail", "sequence": sequence})
    return _detail(request, event, reveal=False)


def _detail(request: HttpRequest, event: AuditEvent, *, reveal: bool, reason_error: str = "",
            status: int = 200) -> HttpResponse:
    content = event_content(event, viewer=request.user)  # sealed fields opened, or marked erased
    passages = passages_as_retrieved(event, content)
    # Checked after this view's own event is written, so the newest event's forward link is checked too.
    response = render(request, "audit/event_detail.html", {
        "event": event, "payload": shown_payload(content, user=request.user, reveal=reveal, passages=passages),
        "passages": shown_passages(passages, user=request.user, reveal=reveal), "revealed": reveal,
        "reason_error": reason_error, "integrity": audit_event_verify(event), "trail": audit_integrity_status(),
        "monitor": integrity_monitor(),
    }, status=status)
    if reveal:
        response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def event_reveal(request: HttpRequest, sequence: int) -> HttpResponse:
    """Show the event's content unmasked, for this response only, once the officer has typed
    why; the reveal is itself an event (who, which event, why). Passages of collections the
    officer may not read stay masked (apps.audit.review)."""
    event = get_object_or_404(AuditEvent, sequence=sequence)
    reason = request.POST.get("reason", "").strip()[:500]
    problem = reveal_problem(reason)
    if problem:
        return _detail(request, event, reveal=False, reason_error=problem, status=400)
    kept = withheld_passages(passages_as_retrieved(event), request.user)
    audit_record(event_type=EventType.REVEALED, outcome=Outcome.SUCCESS, actor=request.user,
                 payload={"sequence": sequence, "event_type": event.event_type, "reason": reason,
                          "passages_kept_masked": sorted(str(n) for n in kept)})
    return _detail(request, event, reveal=True)


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def event_detail_export(request: HttpRequest, sequence: int) -> HttpResponse:
    """The one event as a signed export (same zip as a range), to hand to an investigator."""
    event = get_object_or_404(AuditEvent, sequence=sequence)
    try:
        export = audit_export(events=AuditEvent.objects.filter(pk=event.pk), filters={"sequence": str(sequence)},
                              exported_by=request.user)
    except SigningKeyUnavailable as error:
        return _signer_unavailable(request, {"sequence": str(sequence)}, error)
    response = HttpResponse(export.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="audit-event-{sequence}-{export.file_name.removeprefix("audit-export-")}"'
    return response


def _signer_unavailable(request: HttpRequest, filters: dict, error: Exception) -> HttpResponse:
    audit_record(event_type=EventType.AUDIT_EXPORTED, outcome=Outcome.ERROR, actor=request.user,
                 payload={"filters": filters, "error": str(error)[:300]})
    return HttpResponse("The audit signer did not answer, so the export cannot be signed; try again shortly.",
                        status=503, content_type="text/plain")


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def event_export(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    try:
        export = audit_export(events=audit_events_list(filters=filters), filters=filters.as_record(), exported_by=request.user)
    except SigningKeyUnavailable as error:
        return _signer_unavailable(request, filters.as_record(), error)
    response = FileResponse(export.file, content_type="application/zip")  # streamed from the spooled file
    response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    return response


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def attestation(request: HttpRequest) -> HttpResponse:
    report = attestation_report()
    audit_record(event_type=EventType.ATTESTATION_VIEWED, outcome=Outcome.SUCCESS, actor=request.user,
                 payload={"passed": attestation_passed(report), "blocked_recorded": report["blocked_recorded"]})
    return render(request, "audit/attestation.html", {"report": report, "passed": attestation_passed(report)})
