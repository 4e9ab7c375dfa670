"""Search benchmark at 100,000 chunks: latency of the product's search (query embedding +
the hybrid SQL, no LLM) and recall of its vector half under permission filters.

Data: 1,000 SciFact abstracts are embedded for real (all-MiniLM-L6-v2); the 100,000 chunks
are those texts repeated with their vector plus Gaussian noise (cosine ~0.93 to the
original), inserted directly with COPY into 10 collections of 10,000 chunks, then the
HNSW index is rebuilt (same definition as the corpus migration) and the table vacuumed and
analysed (the state autovacuum leaves it in). Queries are the SciFact dev queries. The
search measured is apps.retrieval.services.chunks_search, for three readers:

* the owner of all 10 collections (the permission filter keeps 100%): HNSW;
* a reader of one collection (keeps 10%, 10,000 chunks): HNSW with an iterative scan;
* that reader searching 20 documents they picked (2,000 chunks, 2%): exact distances
  (at most RETRIEVAL_EXACT_MAX_CHUNKS readable chunks).

Reported: p50/p95 of the SQL alone and of query embedding + SQL, the fewest results any
query returned (k=10), recall@10 of the vector half against exact search under the 10% and
2% filters, which form of the vector half ran, and the load average (shared machine).

    make bench-search        # or: .venv/bin/python bench/search.py [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_env import ROOT, django_setup  # noqa: E402

DATASET = ROOT.parent / "shared" / "eval" / "scifact-dev"
COLLECTIONS = 10


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def load(chunks: int, say) -> None:
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.corpus.models import Chunk, Collection, Document
    from apps.ingestion.embedding import embed_passages

    if Chunk.objects.filter(collection__name__startswith="bench-").count() == chunks:
        say(f"{chunks} benchmark chunks already loaded")
        return
    Collection.objects.filter(name__startswith="bench-").delete()
    texts = [json.loads(line)["text"][:1200] for line in open(DATASET / "corpus.jsonl", encoding="utf-8")][:1000]
    cache = ROOT / "var" / "bench" / "scifact-1000-minilm.npy"
    if cache.exists():
        base = np.load(cache)
    else:
        started = time.monotonic()
        base = np.array(embed_passages(texts), dtype=np.float32)
        say(f"embedded {len(texts)} abstracts in {time.monotonic() - started:.0f} s")
        np.save(cache, base)
    owner, _ = get_user_model().objects.get_or_create(username="bench-owner")
    rng = np.random.default_rng(42)
    per_collection = chunks // COLLECTIONS
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'chunk_embedding_hnsw'")
        row = cursor.fetchone()
        index_sql = row[0] if row else None
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
    started = time.monotonic()
    for c in range(COLLECTIONS):
        collection = Collection.objects.create(name=f"bench-{c}", created_by=owner)
        collection.grants.create(user=owner, level="manage")  # as collection_create gives the creator
        documents = [
            Document.objects.create(collection=collection, title=f"bench-{c}-{d}.txt", file="bench", sha256=f"bench-{c}-{d}",
                                    size_bytes=1, status=Document.Status.INDEXED)
            for d in range(100)
        ]
        picks = rng.integers(0, len(texts), size=per_collection)
        vectors = base[picks] + rng.normal(scale=0.02, size=(per_collection, base.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        with connection.cursor() as cursor:
            with cursor.connection.cursor().copy(
                "COPY corpus_chunk (document_id, collection_id, ordinal, text, page_number, section_title, metadata, embedding) FROM STDIN"
            ) as copy:
                for i in range(per_collection):
                    vector = "[" + ",".join(f"{x:.6f}" for x in vectors[i]) + "]"
                    copy.write_row((documents[i % 100].id, collection.id, i // 100, texts[picks[i]], 1, "", "{}", vector))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE corpus_chunk SET search_vector = setweight(to_tsvector('english', section_title), 'A') || "
            "setweight(to_tsvector('english', text), 'B') WHERE search_vector IS NULL"
        )
        say(f"inserted {chunks} chunks in {time.monotonic() - started:.0f} s; building the HNSW index")
        started = time.monotonic()
        cursor.execute("SET maintenance_work_mem = '2GB'")
        cursor.execute(index_sql or "CREATE INDEX chunk_embedding_hnsw ON corpus_chunk USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
        say(f"HNSW index built in {time.monotonic() - started:.0f} s")
        # What autovacuum does soon after a bulk load: visibility map set, the GIN index's
        # pending list merged, statistics gathered. Measured after it, not at a random point
        # of it.
        cursor.execute("VACUUM (ANALYZE) corpus_chunk")


def vector_half_form(run) -> str:
    """Which form of the vector half ran (EXPLAIN ANALYZE of the statement chunks_search sends)."""
    from django.db import connection, transaction

    captured = []

    def capture(execute, sql, params, many, context):
        if sql.lstrip().startswith("SET LOCAL"):
            captured.append((sql, None))
        elif sql.lstrip().startswith("WITH allowed"):
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        run()
    with transaction.atomic(), connection.cursor() as cursor:
        for sql, _params in captured[:-1]:
            cursor.execute(sql)
        sql, params = captured[-1]
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    hnsw = [line for line in plan if "Index Scan using chunk_embedding_hnsw" in line]
    if hnsw and "never executed" not in hnsw[0]:
        return "HNSW index (iterative scan)"
    return "exact distances over the readable chunks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=188)
    args = parser.parse_args()
    django_setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from apps.corpus.models import Collection, Document
    from apps.ingestion.embedding import embed_query, embedding_backend
    from apps.retrieval.services import chunks_search

    load(args.chunks, print)
    owner = get_user_model().objects.get(username="bench-owner")
    reader, _ = get_user_model().objects.get_or_create(username="bench-reader-10pct")
    only = Collection.objects.get(name="bench-3")
    only.reader_users.add(reader)
    picked = list(Document.objects.filter(collection=only).order_by("id").values_list("id", flat=True)[:20])
    queries = [json.loads(line)["text"] for line in open(DATASET / "queries.jsonl", encoding="utf-8")][: args.queries]
    embed_query("warm up")
    chunks_search(user=owner, query="warm up", max_distance=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM corpus_chunk")
        total = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM corpus_chunk WHERE document_id = ANY(%s)", [picked])
        picked_chunks = cursor.fetchone()[0]
        # The search touches the heap, the HNSW and the GIN index: whether they fit in
        # PostgreSQL's buffer cache decides much of the latency.
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_size_pretty(sum(pg_relation_size(oid))) FROM pg_class "
            "WHERE relname IN ('corpus_chunk', 'chunk_embedding_hnsw', 'chunk_search_vector_gin')"
        )
        searched_size = cursor.fetchone()[0]
    print(f"date {time.strftime('%Y-%m-%d %H:%M')}; load average at start {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} ({os.cpu_count()} CPUs); chunks in the table: {total}; "
          f"{len(queries)} queries, k=10; embedding backend {embedding_backend()}; hnsw.ef_search "
          f"{settings.RETRIEVAL_EF_SEARCH}, RETRIEVAL_EXACT_MAX_CHUNKS {settings.RETRIEVAL_EXACT_MAX_CHUNKS}; "
          f"PostgreSQL shared_buffers {shared_buffers} (table + HNSW + GIN index: {searched_size})")

    scenarios = [
        ("owner of all 10 collections (filter keeps 100%)", owner, None),
        ("reader of 1 collection (filter keeps 10%)", reader, None),
        (f"that reader, 20 documents picked ({picked_chunks} chunks, {100 * picked_chunks / total:.0f}%)", reader, picked),
    ]
    for label, user, documents in scenarios:
        total_ms, sql_ms, counts = [], [], []
        for query in queries:
            started = time.perf_counter()
            vector = embed_query(query)
            mid = time.perf_counter()
            results = chunks_search(user=user, query=query, query_vector=vector, document_ids=documents, k=10,
                                    max_distance=None)
            end = time.perf_counter()
            total_ms.append((end - started) * 1000)
            sql_ms.append((end - mid) * 1000)
            counts.append(len(results))
        form = vector_half_form(lambda user=user, documents=documents: chunks_search(user=user, query=queries[0], document_ids=documents, k=10,
                                                      max_distance=None))
        print(f"hybrid, {label}: embed+SQL p50 {percentile(total_ms, 50):.1f} ms, p95 {percentile(total_ms, 95):.1f} ms; "
              f"SQL only p50 {percentile(sql_ms, 50):.1f} ms, p95 {percentile(sql_ms, 95):.1f} ms; "
              f"fewest results {min(counts)} (queries with 10: {sum(c == 10 for c in counts)}/{len(counts)}); "
              f"vector half: {form}", flush=True)

    # Recall of the vector half of chunks_search against exact search under the same filter.
    for label, documents in (("10% filter", None), (f"{100 * picked_chunks / total:.0f}% filter (documents picked)", picked)):
        recalls, fewest = [], 10
        for query in queries:
            vector = embed_query(query)
            results = chunks_search(user=reader, query=query, query_vector=vector, document_ids=documents, k=10,
                                    max_distance=None, mode="vector")
            fewest = min(fewest, len(results))
            literal = "[" + ",".join(repr(float(x)) for x in vector) + "]"
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")  # no HNSW: exact distances
                cursor.execute(
                    "SELECT id FROM corpus_chunk WHERE collection_id = %s AND (%s::bigint[] IS NULL OR document_id = ANY(%s::bigint[])) "
                    "ORDER BY embedding <=> %s::vector LIMIT 10",
                    [only.id, documents, documents, literal],
                )
                exact = {row[0] for row in cursor.fetchall()}
            recalls.append(len(exact & {r.chunk_id for r in results}) / 10)
        print(f"filtered recall@10 of the vector half against exact search, {label}: {statistics.mean(recalls):.3f} "
              f"(worst query {min(recalls):.1f}); fewest results {fewest}", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
