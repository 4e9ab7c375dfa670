"""The read side. ``collections_readable_by`` is the one visibility rule: every list,
search, answer and citation goes through it."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from apps.corpus.models import Chunk, Collection, Document


def collections_readable_by(user) -> QuerySet[Collection]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Collection.objects.none()
    granted = Q(reader_users=user) | Q(reader_groups__in=user.groups.all()) | Q(created_by=user)
    ids = Collection.objects.filter(granted).values("id")
    return Collection.objects.filter(id__in=ids)


def collections_managed_by(user) -> QuerySet[Collection]:
    """Collections a corpus admin may upload to: all of them, for holders of the permission."""
    if not getattr(user, "is_authenticated", False) or not user.has_perm("corpus.add_document"):
        return Collection.objects.none()
    return Collection.objects.all()


def collection_list_with_counts(user) -> QuerySet[Collection]:
    visible = collections_readable_by(user) | collections_managed_by(user)
    return visible.distinct().annotate(
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
