"""Failed authentications counted per source, name and time window, not one event each
(security review finding 8, issue 14 item 6).

A wrong password, an unknown API token or a failed single sign-on used to append one
permanent audit event each, under the lock every writer of the trail takes: anyone on the
network could grow a six-year, append-only table and slow every real question. Now each
failure increments one row per (method, client address, name tried, window of
AUTH_FAILURE_WINDOW_SECONDS); the first failure of a row is audited at once (so a single
wrong password shows up as before), the others as one event with their count once the window
has closed (Celery beat, or the same key's next failure). A source trying more than
AUTH_FAILURE_NAMES_PER_SOURCE names in a window, or more than AUTH_FAILURE_SOURCES_PER_WINDOW
sources failing in one window, are folded into one row, so rotating names or addresses does
not multiply events either. The counts also drive the per-name sign-in pause across
addresses (``name_paused``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from apps.accounts.models import AuthFailureWindow
from apps.audit.context import current_context
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record, audit_record_many

OTHER_NAMES = "(other names)"
OTHER_SOURCES = "(other addresses)"
NAME_FIELD = {"password": "username", "oidc": "username", "api_token": "api_token"}


def window_start(now: datetime | None = None) -> datetime:
    seconds = settings.AUTH_FAILURE_WINDOW_SECONDS
    epoch = int((now or timezone.now()).timestamp()) // seconds * seconds
    return datetime.fromtimestamp(epoch, tz=UTC)


def _key(method: str, source: str, name: str, start: datetime) -> tuple[str, str]:
    """Fold a new (source, name) into the overflow rows when a window already has many."""
    rows = AuthFailureWindow.objects.filter(method=method, window_start=start)
    if rows.filter(source=source, name=name).exists():
        return source, name
    if not rows.filter(source=source).exists() and (
            rows.values("source").distinct().count() >= settings.AUTH_FAILURE_SOURCES_PER_WINDOW):
        return OTHER_SOURCES, OTHER_NAMES
    if rows.filter(source=source).count() >= settings.AUTH_FAILURE_NAMES_PER_SOURCE:
        return source, OTHER_NAMES
    return source, name


def auth_failure_record(*, method: str, name: str, payload: dict) -> int:
    """Count one failed authentication (``payload``: its sign-in-failed event, with a
    "reason"); audited now if it is the first of its window. Returns the window's count."""
    start = window_start()
    source, name = _key(method, current_context().ip_address or "(no address)", name[:150], start)
    reason = str(payload.get("reason", ""))[:500]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {AuthFailureWindow._meta.db_table} "
                "(method, source, name, window_start, count, reported, reason) VALUES (%s, %s, %s, %s, 1, 0, %s) "
                "ON CONFLICT (method, source, name, window_start) DO UPDATE SET "
                f"count = {AuthFailureWindow._meta.db_table}.count + 1, reason = EXCLUDED.reason RETURNING id, count",
                [method, source, name, start, reason])
            row_id, count = cursor.fetchone()
        if count == 1:
            audit_record(event_type=EventType.SIGN_IN_FAILED, outcome=Outcome.DENIED, payload=payload)
            AuthFailureWindow.objects.filter(id=row_id).update(reported=F("reported") + 1)
    if count == 1:  # this key's earlier windows, if any are still unreported
        auth_failures_summarise(method=method, source=source, name=name)
    return count


def auth_failures_summarise(**key) -> int:
    """One sign-in-failed event with its count for each closed window holding failures not
    yet in the trail (optionally only those matching ``key``); forgets windows older than a
    day. Returns how many events were written."""
    current = window_start()
    with transaction.atomic():
        rows = list(AuthFailureWindow.objects.select_for_update(skip_locked=True)
                    .filter(window_start__lt=current, count__gt=F("reported"), **key)
                    .order_by("window_start", "id")[:1000])
        records = [{
            "event_type": EventType.SIGN_IN_FAILED, "outcome": Outcome.DENIED,
            "payload": {"method": row.method, NAME_FIELD.get(row.method, "name"): row.name, "source": row.source,
                        "reason": "repeated failures", "last_reason": row.reason,
                        "count": row.count - row.reported, "failures_in_window": row.count,
                        "window_start": row.window_start.isoformat(),
                        "window_seconds": settings.AUTH_FAILURE_WINDOW_SECONDS},
        } for row in rows]
        if records:
            audit_record_many(records)
            for row in rows:
                AuthFailureWindow.objects.filter(id=row.id).update(reported=row.count)
        AuthFailureWindow.objects.filter(window_start__lt=current - timedelta(days=1), count=F("reported")).delete()
    return len(records)


def name_failures(method: str, name: str) -> int:
    """Failures for ``name`` from every address in this window and the previous one."""
    since = window_start() - timedelta(seconds=settings.AUTH_FAILURE_WINDOW_SECONDS)
    total = (AuthFailureWindow.objects.filter(method=method, name=name[:150], window_start__gte=since)
             .aggregate(total=Sum("count"))["total"])
    return total or 0


def name_paused(name: str) -> bool:
    """A user name tried and failed AUTH_NAME_FAILURE_LIMIT times from any mix of addresses:
    sign-in with a password pauses for it (per name and address is django-axes' job; this
    closes the bypass by rotating source addresses)."""
    return bool(name) and name_failures("password", name) >= settings.AUTH_NAME_FAILURE_LIMIT
