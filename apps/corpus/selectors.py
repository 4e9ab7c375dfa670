"""The read side. ``collections_readable_by`` is the one visibility rule: every list,
search, answer and citation goes through it."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Count, Q, QuerySet

from apps.corpus.models import Chunk, Collection, CollectionGrant, Document

Level = CollectionGrant.Level


def _collections_granted(user, levels: tuple[str, ...]) -> QuerySet[Collection]:
    """Collections where ``user`` holds one of ``levels``: a grant to them or to a group they
    are in (looked up in the same statement, so a change applies to the next request). The
    creator holds an ordinary, revocable ``manage`` grant row (apps.corpus.services), not an
    implicit right. One SQL subquery, no Python."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Collection.objects.none()
    grants = CollectionGrant.objects.filter(level__in=levels).filter(
        Q(user=user) | Q(group__in=Group.objects.filter(user=user).values("id"))
    )
    return Collection.objects.filter(id__in=grants.values("collection_id"))


def collections_readable_by(user) -> QuerySet[Collection]:
    """THE visibility rule: lists, search, answers, citations, exports and the API."""
    return _collections_granted(user, (Level.READ, Level.INGEST, Level.MANAGE))


def collections_ingestable_by(user) -> QuerySet[Collection]:
    """Collections ``user`` may upload to (and retry failed documents in)."""
    return _collections_granted(user, (Level.INGEST, Level.MANAGE))


def collections_manageable_by(user) -> QuerySet[Collection]:
    """Collections whose documents ``user`` may delete and whose grants they may change."""
    return _collections_granted(user, (Level.MANAGE,))


def may_add_version(*, user, document: Document) -> bool:
    """Whether an upload by ``user`` may become the next version of ``document`` (which drops
    the old version's passages from search, so it is as strong as deleting): a manager of the
    collection, or whoever uploaded this version or the first one. ``None`` is the operator."""
    if user is None:
        return True
    if collections_manageable_by(user).filter(id=document.collection_id).exists():
        return True
    first = Document.objects.filter(collection_id=document.collection_id, title=document.title, version=1).first()
    return user.pk in {document.uploaded_by_id, getattr(first, "uploaded_by_id", None)} - {None}


def grant_level_of(user, collection: Collection) -> str | None:
    """The highest level ``user`` holds on ``collection`` (for showing buttons only)."""
    for level, selector in ((Level.MANAGE, collections_manageable_by), (Level.INGEST, collections_ingestable_by),
                            (Level.READ, collections_readable_by)):
        if selector(user).filter(id=collection.id).exists():
            return level
    return None


def grant_levels_of(user, collection_ids: list[int]) -> dict[int, str | None]:
    """``grant_level_of`` for many collections in three queries (not three per collection)."""
    ids = list(collection_ids)
    levels: dict[int, str | None] = dict.fromkeys(ids)
    for level, selector in ((Level.READ, collections_readable_by), (Level.INGEST, collections_ingestable_by),
                            (Level.MANAGE, collections_manageable_by)):
        for collection_id in selector(user).filter(id__in=ids).values_list("id", flat=True):
            levels[collection_id] = level
    return levels


def readable_document_ids(user, document_ids) -> set[int]:
    """Those of ``document_ids`` that ``user`` may read now (one query; a deleted document is
    not readable)."""
    ids = {int(i) for i in document_ids}
    if not ids:
        return set()
    return set(Document.objects.filter(id__in=ids, collection__in=collections_readable_by(user))
               .values_list("id", flat=True))


class ReadAccessWatch:
    """Re-checks, during a long answer, that ``user`` still reads every collection its sources
    came from: a grant revoked (or an account disabled) mid-stream stops it. ``lost()`` asks
    the database at most every ``every_seconds`` (one indexed query), ``lost(now=True)``
    always: before the sources are shown again with the final answer."""

    def __init__(self, user, collection_ids, every_seconds: float = 0.5) -> None:
        import time

        self._clock = time.monotonic
        self.user, self.collection_ids, self.every = user, {int(i) for i in collection_ids}, every_seconds
        self._next = self._clock() + every_seconds
        self._lost = False

    def lost(self, now: bool = False) -> bool:
        if self._lost or not self.collection_ids:
            return self._lost
        if now or self._clock() >= self._next:
            self._next = self._clock() + self.every
            from django.contrib.auth import get_user_model

            user = self.user
            if getattr(user, "pk", None) is not None:  # reload: is_active may have changed
                user = get_user_model().objects.filter(pk=user.pk).first()
            readable = collections_readable_by(user).filter(id__in=self.collection_ids).count() if user else 0
            self._lost = readable != len(self.collection_ids)
        return self._lost


def collection_grants(collection: Collection) -> QuerySet[CollectionGrant]:
    return collection.grants.select_related("user", "group", "granted_by").order_by("group__name", "user__username")


def collection_list_with_counts(user) -> QuerySet[Collection]:
    return collections_readable_by(user).annotate(
        document_count=Count("documents", distinct=True),
        indexed_count=Count("documents", filter=Q(documents__status=Document.Status.INDEXED), distinct=True),
    )


def chunk_visible_to(user, chunk_id: int) -> Chunk | None:
    return (
        Chunk.objects.select_related("document", "collection")
        .filter(id=chunk_id, collection__in=collections_readable_by(user))
        .first()
    )


def document_status_counts(collection: Collection) -> dict[str, int]:
    counts = dict.fromkeys(Document.Status.values, 0)
    for row in collection.documents.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def collection_progress(collection: Collection) -> dict:
    """Counts by status, share finished, an estimate of time left (from the rate at which
    documents finished in the last 10 minutes), and the failure reasons."""
    from datetime import timedelta

    from django.utils import timezone

    counts = document_status_counts(collection)
    unfinished = sum(counts[s] for s in Document.UNFINISHED)
    finished = counts[Document.Status.INDEXED] + counts[Document.Status.FAILED]
    total = unfinished + finished
    since = timezone.now() - timedelta(minutes=10)
    recent = collection.documents.filter(updated_at__gte=since, status__in=[Document.Status.INDEXED, Document.Status.FAILED])
    rate = recent.count() / 600.0
    eta = int(unfinished / rate) if unfinished and rate else None
    failures = list(
        collection.documents.filter(status=Document.Status.FAILED)
        .values("id", "title", "failure_code", "failure_reason", "attempts", "quarantined_at")
        .order_by("-updated_at")[:200]
    )
    return {"counts": counts, "unfinished": unfinished, "total": total,
            "percent": int(100 * finished / total) if total else 100, "eta_seconds": eta, "failures": failures}
