from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.selectors import audit_events_list


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def event_list(request: HttpRequest) -> HttpResponse:
    filters = {
        "event_type": request.GET.get("event_type", ""),
        "outcome": request.GET.get("outcome", ""),
        "actor": request.GET.get("actor", "").strip(),
    }
    page = Paginator(audit_events_list(**filters), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "audit/event_list.html",
        {
            "page": page,
            "filters": filters,
            "event_types": EventType.choices,
            "outcomes": Outcome.choices,
        },
    )


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def event_detail(request: HttpRequest, sequence: int) -> HttpResponse:
    event = get_object_or_404(AuditEvent, sequence=sequence)
    return render(request, "audit/event_detail.html", {"event": event})
