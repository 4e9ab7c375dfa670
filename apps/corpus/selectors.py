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
