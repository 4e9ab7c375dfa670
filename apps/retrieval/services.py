"""Search over the chunks a user may read.

The permission filter is part of the SQL statement (a sub-select on the visibility
selector), never applied in Python after the fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from pgvector.django import CosineDistance

from apps.corpus.models import Chunk
from apps.corpus.selectors import collections_readable_by
from apps.ingestion.embedding import embed_query


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: int
    document_id: int
    document_title: str
    collection_id: int
    page_number: int | None
    section_title: str
    text: str
    distance: float

    @property
    def score(self) -> float:
        return round(1.0 - self.distance, 4)


def chunks_search(
    *,
    user,
    query: str,
    collection_ids: Sequence[int] | None = None,
    k: int | None = None,
    query_vector: list[float] | None = None,
) -> list[RetrievedChunk]:
    k = k or settings.RETRIEVAL_TOP_K
    readable = collections_readable_by(user)
    if collection_ids:
        readable = readable.filter(id__in=collection_ids)
    vector = query_vector if query_vector is not None else embed_query(query)
    chunks = (
        Chunk.objects.filter(collection__in=readable.values("id"))
        .annotate(distance=CosineDistance("embedding", vector))
        .filter(distance__lte=settings.RETRIEVAL_MAX_DISTANCE)
        .order_by("distance")
        .select_related("document")
        .only("id", "document_id", "collection_id", "page_number", "section_title", "text", "document__title")[:k]
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            # pgvector >= 0.8: keep scanning the HNSW graph until k rows pass the filter.
            cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        rows = list(chunks)
    return [
        RetrievedChunk(
            chunk_id=c.id,
            document_id=c.document_id,
            document_title=c.document.title,
            collection_id=c.collection_id,
            page_number=c.page_number,
            section_title=c.section_title,
            text=c.text,
            distance=float(c.distance),
        )
        for c in rows
    ]
