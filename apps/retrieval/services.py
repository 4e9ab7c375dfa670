"""Hybrid search over the chunks a user may read, in one SQL statement.

``chunks_search`` runs a single statement that

* compiles the permission filter from ``collections_readable_by`` (the one visibility rule)
  into a CTE, narrowed by the collections/documents the user picked;
* takes the nearest chunks by cosine distance. When the filter keeps few chunks (at most
  ``RETRIEVAL_EXACT_MAX_CHUNKS``, counted inside the statement) by exact distance over those
  rows; otherwise through the pgvector HNSW index, with pgvector >= 0.8 iterative index
  scans so a selective permission filter still yields enough candidates;
* takes the best full-text matches (``search_vector`` tsvector, GIN index; the question's
  words are OR-ed, as BM25 does, and ranked with ``ts_rank``);
* fuses both lists by weighted reciprocal rank fusion and returns the top ``k``.

The filter is inside the statement, in both candidate lists and again on the final rows; no
chunk a user may not read ever reaches Python. With a streaming replica configured
(``DATABASE_REPLICA_URL``, apps.retrieval.routers) the statement runs there, with the readable
collections decided on the primary, and the documents found are confirmed on the primary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, transaction

from apps.corpus.selectors import collections_readable_by
from apps.ingestion.embedding import embed_query
from apps.retrieval.routers import search_database


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: int
    document_id: int
    document_title: str
    collection_id: int
    page_number: int | None
    section_title: str
    text: str
    distance: float  # cosine distance to the question (0 = same direction)
    fused_score: float = 0.0  # reciprocal rank fusion score
    vector_rank: int | None = None  # rank among the nearest chunks, None: not among them
    keyword_rank: int | None = None  # rank among the full-text matches, None: no match

    @property
    def score(self) -> float:
        """Cosine similarity to the question, as shown to users and recorded in the audit."""
        return round(1.0 - self.distance, 4)


@dataclass(frozen=True)
class SearchFilter:
    """What restricted a search: recorded in the audit trail as ``permission_filter``."""

    readable_collection_ids: list[int]
    collection_ids: list[int] | None
    document_ids: list[int] | None

    def describe(self) -> dict:
        return {
            "rule": "collections_readable_by(user)",
            "readable_collection_ids": self.readable_collection_ids,
            "collections_picked": self.collection_ids,
            "documents_picked": self.document_ids,
            "applied_in": "sql",
        }


def search_filter_for(
    *, user, collection_ids: Sequence[int] | None = None, document_ids: Sequence[int] | None = None
) -> SearchFilter:
    return SearchFilter(
        readable_collection_ids=sorted(collections_readable_by(user).values_list("id", flat=True)),
        collection_ids=sorted(collection_ids) if collection_ids else None,
        document_ids=sorted(document_ids) if document_ids else None,
    )


def _vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


# The keyword query: the question's stemmed words (stop words dropped) OR-ed, as BM25
# matches any term, minus the words that occur in more than a fraction of all chunks
# according to PostgreSQL's own statistics of the column (pg_stats.most_common_elems,
# gathered by ANALYZE). Those carry almost no information (BM25 gives them ~0 IDF: ts_rank
# has no IDF at all) and would make the full-text half rank most of the table (measured
# at 100,000 chunks: 600 ms for a 9-word question). Tuned on SciFact dev: 2%.
# The statistics row is read once (not once per word), and the query is built once in a
# MATERIALIZED CTE and used through an InitPlan: inlined, to_tsquery() was parsed again
# for every matching row (250 -> 110 ms for a 12-word question matching 8,000 chunks).
_TSQUERY = """
term_stats AS MATERIALIZED (
    SELECT s.most_common_elems::text::text[] AS elems, s.most_common_elem_freqs AS freqs
    FROM pg_stats s
    WHERE s.schemaname = current_schema() AND s.tablename = 'corpus_chunk' AND s.attname = 'search_vector'
),
q AS MATERIALIZED (
    SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(t.lexeme), ' | '), '')) AS ts
    FROM unnest(to_tsvector('english', %s)) AS t
    WHERE coalesce((SELECT s.freqs[array_position(s.elems, t.lexeme)] FROM term_stats s), 0) <= %s
       -- a small table's frequencies say nothing about how informative a word is
       OR (SELECT c.reltuples FROM pg_class c WHERE c.oid = 'corpus_chunk'::regclass) < %s
)"""

# The vector half has two forms, and ``scope`` picks one inside the statement (a one-time
# filter: the other form is never started):
# * the filter keeps at most RETRIEVAL_EXACT_MAX_CHUNKS chunks (counted per readable
#   collection through the collection_id btree, stopping one past the limit): exact cosine
#   distance over those rows, then sort. Recall 1.0, and k results however selective the
#   filter, where an HNSW walk visits ~candidates / selectivity graph nodes and gives up at
#   hnsw.max_scan_tuples (20,000: fine above the limit up to ~750,000 chunks).
# * otherwise the HNSW index with an iterative scan; ``OFFSET 0`` keeps the planner from
#   serving the exact form from the index. The walk is the faster of the two beyond a few
#   thousand chunks (see RETRIEVAL_EXACT_MAX_CHUNKS in settings).
_SQL = """
WITH allowed AS MATERIALIZED (
    SELECT a.id FROM ({readable}) AS a
    WHERE %s::bigint[] IS NULL OR a.id = ANY(%s::bigint[])
),
scope AS MATERIALIZED (
    SELECT count(*) <= %s AS exact FROM (
        SELECT 1 FROM allowed a CROSS JOIN LATERAL (
            SELECT 1 FROM corpus_chunk c
            WHERE c.collection_id = a.id
              AND (%s::bigint[] IS NULL OR c.document_id = ANY(%s::bigint[]))
            LIMIT %s
        ) AS in_collection
        LIMIT %s
    ) AS kept
),
{tsquery},
vec AS (
    SELECT id, row_number() OVER (ORDER BY distance, id) AS r FROM (
        (
            SELECT c.id, c.embedding <=> %s::vector AS distance
            FROM corpus_chunk c
            WHERE NOT (SELECT exact FROM scope)
              AND c.collection_id IN (SELECT id FROM allowed)
              AND (%s::bigint[] IS NULL OR c.document_id = ANY(%s::bigint[]))
            ORDER BY c.embedding <=> %s::vector
            LIMIT %s
        )
        UNION ALL
        (
            SELECT e.id, e.distance FROM (
                SELECT c.id, c.embedding <=> %s::vector AS distance
                FROM corpus_chunk c
                WHERE (SELECT exact FROM scope)
                  AND c.collection_id IN (SELECT id FROM allowed)
                  AND (%s::bigint[] IS NULL OR c.document_id = ANY(%s::bigint[]))
                OFFSET 0
            ) AS e
            ORDER BY e.distance, e.id
            LIMIT %s
        )
    ) AS nearest
),
kw AS (
    SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS r FROM (
        SELECT c.id, ts_rank(c.search_vector, (SELECT ts FROM q), %s) AS rank
        FROM corpus_chunk c
        WHERE c.search_vector @@ (SELECT ts FROM q)
          AND c.collection_id IN (SELECT id FROM allowed)
          AND (%s::bigint[] IS NULL OR c.document_id = ANY(%s::bigint[]))
        ORDER BY rank DESC, c.id
        LIMIT %s
    ) AS matches
),
fused AS (
    SELECT coalesce(vec.id, kw.id) AS id, vec.r AS vector_rank, kw.r AS keyword_rank,
           coalesce(%s / (%s + vec.r), 0) + coalesce(%s / (%s + kw.r), 0) AS score
    FROM vec FULL OUTER JOIN kw ON vec.id = kw.id
)
SELECT c.id, c.document_id, d.title, c.collection_id, c.page_number, c.section_title, c.text,
       c.embedding <=> %s::vector AS distance, f.score, f.vector_rank, f.keyword_rank
FROM fused f
JOIN corpus_chunk c ON c.id = f.id
JOIN corpus_document d ON d.id = c.document_id
WHERE c.collection_id IN (SELECT id FROM allowed)
  AND (%s::float8 IS NULL OR c.embedding <=> %s::vector <= %s::float8)
ORDER BY f.score DESC, distance, c.id
LIMIT %s
"""


def chunks_search(
    *,
    user,
    query: str,
    collection_ids: Sequence[int] | None = None,
    document_ids: Sequence[int] | None = None,
    k: int | None = None,
    query_vector: Sequence[float] | None = None,
    max_distance: float | None | bool = True,
    mode: str = "hybrid",
    candidates: int | None = None,
) -> list[RetrievedChunk]:
    """The ``k`` best chunks for ``query`` among those ``user`` may read, best first.

    ``max_distance``: chunks farther than this cosine distance from the question are not
    relevant at all (True: ``RETRIEVAL_MAX_DISTANCE``; None: no cut, as the evaluation
    ranks everything). ``mode``: "hybrid", "vector" or "keyword" (the last two for the
    evaluation's baselines; they are the same statement with the other list weighted 0).
    """
    k = k or settings.RETRIEVAL_TOP_K
    candidates = max(candidates or settings.RETRIEVAL_CANDIDATES, k)
    if max_distance is True:
        max_distance = settings.RETRIEVAL_MAX_DISTANCE
    vector_weight = 0.0 if mode == "keyword" else settings.RETRIEVAL_VECTOR_WEIGHT
    keyword_weight = 0.0 if mode == "vector" else settings.RETRIEVAL_KEYWORD_WEIGHT
    if mode not in {"hybrid", "vector", "keyword"}:
        raise ValueError(f"unknown search mode {mode!r}")
    vector = _vector_literal(query_vector if query_vector is not None else embed_query(query))
    alias = search_database()
    readable_sql, readable_params, allowed_ids = _readable(user, alias)
    picked = list(collection_ids) if collection_ids else None
    docs = list(document_ids) if document_ids else None
    rrf_k = float(settings.RETRIEVAL_RRF_K)
    exact_max = settings.RETRIEVAL_EXACT_MAX_CHUNKS
    vector_candidates = candidates if vector_weight else 0
    params = [
        *readable_params, picked, picked,
        exact_max, docs, docs, exact_max + 1, exact_max + 1,
        query, settings.RETRIEVAL_KEYWORD_MAX_TERM_FREQUENCY, settings.RETRIEVAL_KEYWORD_STATS_MIN_CHUNKS,
        vector, docs, docs, vector, vector_candidates,
        vector, docs, docs, vector_candidates,
        settings.RETRIEVAL_TS_RANK_NORMALIZATION, docs, docs, candidates if keyword_weight else 0,
        vector_weight, rrf_k, keyword_weight, rrf_k,
        vector,
        max_distance, vector, max_distance,
        k,
    ]
    rows = _fetch(alias, _SQL.format(readable=readable_sql, tsquery=_TSQUERY), params, candidates=candidates)
    if allowed_ids is not None:
        rows = _still_readable(rows, allowed_ids)
    return [_retrieved(row) for row in rows]


def _readable(user, alias: str) -> tuple[str, list, list[int] | None]:
    """The permission filter as SQL and its parameters, and, on a replica, the readable ids
    (then the rows found are confirmed on the primary: ``_still_readable``)."""
    if alias == "default":  # one server: the permission rule is compiled into the statement
        readable_sql, readable_params = collections_readable_by(user).values("id").query.sql_with_params()
        return readable_sql, list(readable_params), None
    # a replica: who may read what is decided on the primary, never on a lagging copy
    allowed_ids = list(collections_readable_by(user).values_list("id", flat=True))
    return "SELECT unnest(%s::bigint[]) AS id", [allowed_ids], allowed_ids


def _fetch(alias: str, sql: str, params: list, *, candidates: int) -> list[tuple]:
    """The statement's rows, run on ``alias`` with the index scan's settings for this query."""
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        # pgvector >= 0.8: keep walking the HNSW graph until enough rows pass the filter
        # (relaxed order: the statement re-ranks the candidates by exact distance anyway).
        # No JIT: compiling costs more than this statement runs (and the exact form's cost
        # estimate grows with the table). One round trip (no parameters: simple protocol).
        cursor.execute(
            "SET LOCAL hnsw.iterative_scan = relaxed_order; "
            f"SET LOCAL hnsw.ef_search = {int(max(candidates, settings.RETRIEVAL_EF_SEARCH))}; "
            f"SET LOCAL hnsw.max_scan_tuples = {int(settings.RETRIEVAL_HNSW_MAX_SCAN_TUPLES)}; "
            "SET LOCAL jit = off"
        )
        cursor.execute(sql, params)
        return cursor.fetchall()


def _retrieved(row: tuple) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=row[0], document_id=row[1], document_title=row[2], collection_id=row[3], page_number=row[4],
        section_title=row[5], text=row[6], distance=float(row[7]), fused_score=float(row[8]),
        vector_rank=row[9], keyword_rank=row[10],
    )


def _still_readable(rows: list[tuple], allowed_ids: list[int]) -> list[tuple]:
    """Rows a replica returned whose document is, on the primary, still indexed in a
    collection the user may read: a document deleted or moved a moment ago, which the
    replica has not replayed yet, is not shown (one query on the primary)."""
    from apps.corpus.models import Document

    live = set(Document.objects.using("default").filter(
        id__in={row[1] for row in rows}, status=Document.Status.INDEXED, collection_id__in=allowed_ids,
    ).values_list("id", flat=True))
    return [row for row in rows if row[1] in live]
