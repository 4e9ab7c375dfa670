from django.db.models import QuerySet

from apps.audit.models import AuditEvent


def audit_events_list(*, event_type: str = "", outcome: str = "", actor: str = "") -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if event_type:
        events = events.filter(event_type=event_type)
    if outcome:
        events = events.filter(outcome=outcome)
    if actor:
        events = events.filter(actor_username=actor)
    return events.order_by("-sequence")
