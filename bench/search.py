"""Search benchmark at 300,000 and 1,000,000 chunks: latency of the product's search (query
embedding + the hybrid SQL, no LLM), recall of its vector half under permission filters, and
the keyword half alone.

Data (bench/search_load.py): the 2,101 SciFact abstracts embedded for real with the product's
model; every other chunk is one of those texts with its vector plus Gaussian noise (synthetic,
cosine ~0.93 to the original), in 100 collections, loaded with COPY into a throwaway embedded
PostgreSQL under --work (deleted at the end unless --keep). At each size: COPY, HNSW and GIN
build (time, PostgreSQL's peak memory), VACUUM and ANALYZE time, table and index sizes. Then,
for three readers (the owner of all 100 collections: 100%; a reader of 10: 10%; a reader of
one: 1%), the SciFact queries through apps.retrieval.services.chunks_search, k=10:

* hybrid and vector-only: p50/p95 of query embedding + SQL and of the SQL alone, the fewest
  results any query returned, which form of the vector half ran;
* recall@10 of the vector half against exact search (numpy over the same vectors, same filter);
* the keyword half alone: every query, a common word and a rare word (GIN + ts_rank).

``--variant NAME=VALUE[,NAME=VALUE]`` repeats the measurements with settings overridden (for
example RETRIEVAL_EXACT_MAX_CHUNKS=12000). The load average is printed with every figure.

    make bench-search        # or: .venv/bin/python bench/search.py [--sizes 300000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_env import ROOT, django_setup  # noqa: E402
from search_load import Corpus, load_average, relation_sizes  # noqa: E402

DATASET = ROOT.parent / "shared" / "eval" / "scifact-dev"


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def say(msg: str) -> None:
    print(msg, flush=True)


def vector_half_form(run) -> str:
    """Which form of the vector half ran (EXPLAIN ANALYZE of the statement chunks_search sends)."""
    from django.db import connection, transaction

    captured = []

    def capture(execute, sql, params, many, context):
        if sql.lstrip().startswith("SET LOCAL") or sql.lstrip().startswith("WITH allowed"):
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
        return "HNSW (iterative scan)"
    return "exact distances"


def readers(corpus):
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    ten, _ = users.get_or_create(username="bench-reader-10pct")
    one, _ = users.get_or_create(username="bench-reader-1pct")
    for collection in corpus.collections[:10]:
        collection.reader_users.add(ten)
    corpus.collections[0].reader_users.add(one)
    ids = [c.id for c in corpus.collections]
    return [("owner of all 100 collections (100%)", corpus.owner, ids),
            ("reader of 10 collections (10%)", ten, ids[:10]),
            ("reader of 1 collection (1%)", one, ids[:1])]


def exact_top10(corpus, size, collection_ids, vector):
    rows = np.flatnonzero(np.isin(corpus.collection_of[:size], collection_ids)) if len(collection_ids) < 100 else None
    matrix = corpus.vectors[:size] if rows is None else corpus.vectors[rows]
    distances = 1.0 - matrix @ np.asarray(vector, dtype=np.float32)
    best = np.argpartition(distances, 10)[:10]
    return {int((best_row if rows is None else rows[best_row]) + 1) for best_row in best}


def measure(corpus, size, people, queries, label) -> None:
    from apps.ingestion.embedding import embed_query
    from apps.retrieval.services import chunks_search

    say(f"-- {size:,} chunks, {label} (load {load_average()})")
    for name, user, collection_ids in people:
        for mode in ("hybrid", "vector"):
            total_ms, sql_ms, counts, recalls = [], [], [], []
            for query in queries:
                started = time.perf_counter()
                vector = embed_query(query)
                mid = time.perf_counter()
                results = chunks_search(user=user, query=query, query_vector=vector, k=10, max_distance=None, mode=mode)
                end = time.perf_counter()
                total_ms.append((end - started) * 1000)
                sql_ms.append((end - mid) * 1000)
                counts.append(len(results))
                if mode == "vector":
                    exact = exact_top10(corpus, size, collection_ids, vector)
                    recalls.append(len(exact & {r.chunk_id for r in results}) / 10)
            form = vector_half_form(lambda user=user, mode=mode: chunks_search(
                user=user, query=queries[0], k=10, max_distance=None, mode=mode))
            recall = (f"; recall@10 vs exact {statistics.mean(recalls):.3f} (worst query {min(recalls):.1f})"
                      if recalls else "")
            say(f"{mode}, {name}: embed+SQL p50 {percentile(total_ms, 50):.1f} / p95 {percentile(total_ms, 95):.1f} ms; "
                f"SQL p50 {percentile(sql_ms, 50):.1f} / p95 {percentile(sql_ms, 95):.1f} ms; fewest results "
                f"{min(counts)} ({sum(c == 10 for c in counts)}/{len(counts)} with 10){recall}; vector half: {form} "
                f"(load {load_average()})")
        keyword(user, name, collection_ids, queries)


def keyword_words() -> list[tuple[str, str]]:
    """A common word (in ~1.5% of the abstracts: under the 2% cut, so it is searched) and a rare
    one (in one abstract), both their own stem; and the most common word (over the cut)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS bench_words AS SELECT word, ndoc FROM ts_stat("
                       "'SELECT DISTINCT ON (text) to_tsvector(''english'', text) FROM corpus_chunk WHERE id <= 20000')")
        cursor.execute("SELECT count(DISTINCT text) FROM corpus_chunk WHERE id <= 20000")
        texts = cursor.fetchone()[0]
        pick = ("SELECT word, ndoc FROM bench_words WHERE word ~ '^[a-z]{5,}$' AND "
                "to_tsvector('english', word)::text = '''' || word || ''':1' AND ndoc <= %s ORDER BY ndoc DESC, word LIMIT 1")
        words = []
        for label, limit in (("most common word", texts), ("common word", 0.015 * texts), ("rare word", 1)):
            cursor.execute(pick, [limit])
            word, ndoc = cursor.fetchone()
            words.append((f"{label} '{word}' (in {ndoc} of {texts} abstracts)", word))
        return words


def keyword(user, name, collection_ids, queries) -> None:
    from django.db import connection

    from apps.retrieval.services import chunks_search

    zero = [0.0] * 384
    for label, questions, repeat in [("all queries", queries, 1)] + [(w, [word], 30) for w, word in WORDS]:
        sql_ms, counts = [], []
        for question in questions * repeat:
            started = time.perf_counter()
            results = chunks_search(user=user, query=question, query_vector=zero, k=10, max_distance=None, mode="keyword")
            sql_ms.append((time.perf_counter() - started) * 1000)
            counts.append(len(results))
        matched = ""
        if len(questions) == 1:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM corpus_chunk c WHERE c.search_vector @@ to_tsquery('simple', %s) "
                               "AND c.collection_id = ANY(%s)", [questions[0], collection_ids])
                matched = f"; {cursor.fetchone()[0]} readable chunks contain it"
        say(f"keyword half alone, {name}, {label}: SQL p50 {percentile(sql_ms, 50):.1f} / p95 "
            f"{percentile(sql_ms, 95):.1f} ms; fewest results {min(counts)}{matched} (load {load_average()})")


WORDS: list[tuple[str, str]] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="300000,1000000")
    parser.add_argument("--queries", type=int, default=188)
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "search-scale")
    parser.add_argument("--variant", action="append", default=[], help="NAME=VALUE[,NAME=VALUE]: settings to try")
    parser.add_argument("--keep", action="store_true", help="keep the database and vectors (default: delete)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["RAG_BENCH_PGDATA"] = str(args.work / "postgres")
    django_setup()
    from django.db import connection
    from django.test.utils import override_settings

    from apps.ingestion.embedding import embed_query, embedding_backend
    import search_env

    corpus = Corpus(DATASET, args.work, max(sizes), say)
    people = readers(corpus)
    queries = [json.loads(line)["text"] for line in open(DATASET / "queries.jsonl", encoding="utf-8")][: args.queries]
    embed_query("warm up")
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
    say(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs; load {load_average()}; "
        f"embedding backend {embedding_backend()}; PostgreSQL shared_buffers {shared_buffers}; {len(queries)} queries, k=10")
    try:
        for size in sizes:
            figures = corpus.grow(size)
            say(f"== {size:,} chunks: {json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()})}")
            say(f"sizes: {relation_sizes()}")
            WORDS[:] = keyword_words()
            measure(corpus, size, people, queries, "product defaults")
            for variant in args.variant:
                overrides = {k: type_of(v) for k, v in (item.split("=", 1) for item in variant.split(","))}
                with override_settings(**overrides):
                    measure(corpus, size, people, queries, f"with {variant}")
    finally:
        if not args.keep:
            del corpus
            search_env.database_url.server.stop()
            shutil.rmtree(args.work, ignore_errors=True)
            say(f"deleted {args.work}")


def type_of(value: str):
    try:
        return int(value)
    except ValueError:
        return float(value)


if __name__ == "__main__":
    main()
