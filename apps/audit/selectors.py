from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.apps import apps as django_apps
from django.db.models import Q, QuerySet

from apps.audit.checkpoints import latest_checkpoint
from apps.audit.content import readable_payloads
from apps.audit.models import AuditCheckpoint, AuditEvent, EventType

# A question-text search opens the sealed questions of at most this many newest candidates
# (after the other filters): the text is ciphertext in the database.
SEARCH_SCAN_LIMIT = 5000
PLACEHOLDER_SCAN_LIMIT = 500  # a search for "<PERSON>" masks every candidate it looks at


@dataclass(frozen=True)
class EventFilters:
    event_type: str = ""
    outcome: str = ""
    actor: str = ""
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    collection_id: int | None = None
    search: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type, "outcome": self.outcome, "actor": self.actor,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "collection": str(self.collection_id or ""), "q": self.search,
        }

    def as_record(self) -> dict[str, Any]:
        """``as_dict`` as the trail and export manifests keep it: the question search, which
        may name a person, as its keyed digest (apps.audit.keys.search_term_digest)."""
        from apps.audit.keys import search_term_digest

        recorded: dict[str, Any] = self.as_dict()
        if self.search:
            recorded["q"] = {"hmac": search_term_digest(self.search), "characters": len(self.search)}
        return recorded


def audit_events_list(*, filters: EventFilters | None = None, **legacy: str) -> QuerySet[AuditEvent]:
    """Events matching the review filters (UTC days), newest first."""
    f = filters or EventFilters(**legacy)
    events = AuditEvent.objects.all()
    if f.event_type:
        events = events.filter(event_type=f.event_type)
    if f.outcome:
        events = events.filter(outcome=f.outcome)
    if f.actor:
        events = events.filter(Q(actor_username=f.actor) | Q(payload__username=f.actor))
    if f.date_from:
        events = events.filter(created_at__gte=datetime.combine(f.date_from, time.min, tzinfo=UTC))
    if f.date_to:
        events = events.filter(created_at__lt=datetime.combine(f.date_to + timedelta(days=1), time.min, tzinfo=UTC))
    if f.collection_id:
        events = events.filter(
            Q(payload__collection_id=f.collection_id) | Q(payload__collections_searched__contains=[f.collection_id])
        )
    if f.search:
        events = events.filter(pk__in=_question_matches(events, f.search))
    return events.order_by("-sequence")


def _question_matches(events: QuerySet[AuditEvent], text: str) -> list[int]:
    """Events whose question, *as the list shows it* (masked), contains ``text``: a search
    on the recorded text would tell the officer what the placeholders hide, one guessed
    prefix at a time (security review M7a). A term without ``<``/``>`` can only match the
    masked text where the recorded text has it too, so only those are masked and compared;
    a term with a placeholder in it screens at most PLACEHOLDER_SCAN_LIMIT candidates."""
    from apps.privacy.masking import mask_texts

    needle = text.casefold()
    placeholder = "<" in needle or ">" in needle
    limit = PLACEHOLDER_SCAN_LIMIT if placeholder else SEARCH_SCAN_LIMIT
    candidates = list(events.filter(payload__has_key="question").order_by("-sequence")[:limit])
    hits = [(event.pk, question) for event, payload in zip(candidates, readable_payloads(candidates), strict=True)
            if isinstance(question := payload.get("question"), str) and not getattr(question, "erased", False)
            and (placeholder or needle in question.casefold())]
    masked = mask_texts([question for _, question in hits])
    return [pk for (pk, _), shown in zip(hits, masked, strict=True) if needle in shown.casefold()]


def event_content(event: AuditEvent, *, viewer: Any = None) -> dict[str, Any]:
    """The one read path of an event's payload (views, exports, API): sealed fields opened,
    or an ``ErasedText`` ("erased on DATE by NAME (reason)") where the key was destroyed.
    ``viewer`` is who will see it, for masking on top of this (not applied here)."""
    return readable_payloads([event])[0]


def events_content(events: list[AuditEvent], *, viewer: Any = None) -> list[dict[str, Any]]:
    """``event_content`` for many events at once (one key query in all)."""
    return readable_payloads(events)


def passages_as_retrieved(event: AuditEvent, content: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The retrieved passages of a question event, with the chunk text as stored now.

    The audit app imports no other app, so the chunk model is looked up by name. A chunk
    belongs to one document version (its sha256); if the event recorded that hash and the
    document changed since, the passage is flagged instead of silently shown.
    """
    retrieved = list((content if content is not None else event_content(event)).get("retrieved") or [])
    try:
        Chunk = django_apps.get_model("corpus", "Chunk")
    except LookupError:
        return retrieved
    ids = [r.get("chunk_id") for r in retrieved if r.get("chunk_id")]
    chunks = {c.id: c for c in Chunk.objects.filter(id__in=ids).select_related("document")}
    rows = []
    for r in retrieved:
        chunk = chunks.get(r.get("chunk_id"))
        recorded = r.get("document_sha256") or r.get("sha256") or ""
        current = chunk.document.sha256 if chunk else ""
        rows.append({
            **r,
            "text": r.get("text") or (chunk.text if chunk else ""),
            "document_title": chunk.document.title if chunk else r.get("document_title", ""),
            "document_sha256": recorded or current,
            # Events before the collection id was recorded: the chunk's, while it exists.
            "collection_id": r.get("collection_id") or (chunk.collection_id if chunk else None),
            "version_status": ("removed since" if not chunk else
                               "changed since" if recorded and recorded != current else "as at the time"),
        })
    return rows


@dataclass(frozen=True)
class IntegrityStatus:
    last_verification: AuditEvent | None
    last_checkpoint: AuditCheckpoint | None
    events_since_checkpoint: int


def audit_integrity_status() -> IntegrityStatus:
    checkpoint = latest_checkpoint()
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
    return IntegrityStatus(
        last_verification=AuditEvent.objects.filter(event_type=EventType.AUDIT_VERIFIED).order_by("-sequence").first(),
        last_checkpoint=checkpoint,
        events_since_checkpoint=last - (checkpoint.last_sequence if checkpoint else 0),
    )
