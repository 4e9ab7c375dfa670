"""Search benchmark at 100,000 chunks: latency of the product's search (query embedding +
the hybrid SQL, no LLM) and recall of the HNSW index path under a 10% permission filter.

Data: 1,000 SciFact abstracts are embedded for real (all-MiniLM-L6-v2); the 100,000 chunks
are those texts repeated with their vector plus Gaussian noise (cosine ~0.93 to the
original), inserted directly with COPY into 10 collections of 10,000 chunks, then the
HNSW index is rebuilt (same definition as the corpus migration). Queries are the SciFact
dev queries. The search measured is apps.retrieval.services.chunks_search.

    make bench-search        # or: .venv/bin/python bench/search.py [--chunks 100000]
"""

from __future__ import annotations

import argparse
import json
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
        cursor.execute("ANALYZE corpus_chunk")
    say(f"HNSW index built in {time.monotonic() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=188)
    args = parser.parse_args()
    django_setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from apps.corpus.models import Collection
    from apps.ingestion.embedding import embed_query
    from apps.retrieval.services import chunks_search

    load(args.chunks, print)
    owner = get_user_model().objects.get(username="bench-owner")
    reader, _ = get_user_model().objects.get_or_create(username="bench-reader-10pct")
    only = Collection.objects.get(name="bench-3")
    only.reader_users.add(reader)
    queries = [json.loads(line)["text"] for line in open(DATASET / "queries.jsonl", encoding="utf-8")][: args.queries]
    embed_query("warm up")
    chunks_search(user=owner, query="warm up", max_distance=None)

    def timed(user, label):
        total, sql = [], []
        counts = []
        for query in queries:
            started = time.perf_counter()
            vector = embed_query(query)
            mid = time.perf_counter()
            results = chunks_search(user=user, query=query, query_vector=vector, k=10, max_distance=None)
            end = time.perf_counter()
            total.append((end - started) * 1000)
            sql.append((end - mid) * 1000)
            counts.append(len(results))
        print(f"{label}: embed+search p50 {percentile(total, 50):.1f} ms, p95 {percentile(total, 95):.1f} ms; "
              f"SQL only p50 {percentile(sql, 50):.1f} ms, p95 {percentile(sql, 95):.1f} ms; "
              f"queries returning 10 results: {sum(c == 10 for c in counts)}/{len(counts)}")

    total_chunks = connection.cursor()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM corpus_chunk")
        print(f"chunks in the table: {cursor.fetchone()[0]}")
    timed(owner, "hybrid, owner of all 10 collections (filter keeps 100%)")
    timed(reader, "hybrid, reader of 1 collection (filter keeps 10%)")

    # Filtered recall of the index path: the vector half of chunks_search against exact search.
    recalls, full = [], 0
    for query in queries:
        vector = embed_query(query)
        results = chunks_search(user=reader, query=query, query_vector=vector, k=10, max_distance=None, mode="vector")
        full += len(results) == 10
        literal = "[" + ",".join(repr(float(x)) for x in vector) + "]"
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")  # no HNSW: exact distances
            cursor.execute(
                "SELECT id FROM corpus_chunk WHERE collection_id = %s ORDER BY embedding <=> %s::vector LIMIT 10",
                [only.id, literal],
            )
            exact = {row[0] for row in cursor.fetchall()}
        recalls.append(len(exact & {r.chunk_id for r in results}) / 10)
    print(f"filtered recall@10 (10% filter, index path vs exact): {statistics.mean(recalls):.3f} "
          f"(min {min(recalls):.1f}); queries returning 10 results: {full}/{len(queries)}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        literal = "[" + ",".join(repr(float(x)) for x in embed_query(queries[0])) + "]"
        cursor.execute(
            "EXPLAIN SELECT id FROM corpus_chunk WHERE collection_id = %s ORDER BY embedding <=> %s::vector LIMIT 40",
            [only.id, literal],
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
    print("plan of the filtered vector half uses the HNSW index:", "chunk_embedding_hnsw" in plan)
    del total_chunks, np


if __name__ == "__main__":
    main()
