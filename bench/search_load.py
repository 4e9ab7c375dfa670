"""The data behind bench/search.py: real embeddings of real text for a base set, synthetic
noise around them for the rest, grown in steps (300,000 -> 1,000,000 chunks) in one table.

* base set: the SciFact abstracts (up to 1,200 characters), embedded with the product's
  model (apps.ingestion.embedding.embed_passages), cached as a .npy file;
* every other chunk is a base abstract's text with its vector plus Gaussian noise (cosine
  ~0.93 to the original), normalised: **synthetic vectors**, stated with every figure;
* ``COLLECTIONS`` (100) collections of 100 documents; a step tops every collection up to
  size / 100 chunks, so a reader of 10 collections sees 10% and of one 1% at every size;
* loaded with COPY (explicit ids, the search_vector computed once per base text in SQL), with
  the HNSW and GIN indexes dropped, then both rebuilt (the migration's definitions), then
  ``VACUUM`` and ``ANALYZE`` (what autovacuum does after a bulk load), each timed;
* the vectors are also kept in a float32 memmap (row i = chunk id i + 1) so recall is checked
  against exact search in numpy, not by a 5-second sequential scan per question.

CPU-heavy steps (generation, COPY, index builds, VACUUM) run at nice 10, this process and the
PostgreSQL server both; ``at_normal_priority`` puts them back for the measurements.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

COLLECTIONS = 100
DOCUMENTS_PER_COLLECTION = 100
NOISE = 0.02
DIMENSIONS = 384
HNSW_SQL = ("CREATE INDEX chunk_embedding_hnsw ON corpus_chunk USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 16, ef_construction = 64)")
GIN_SQL = "CREATE INDEX chunk_search_vector_gin ON corpus_chunk USING gin (search_vector)"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def postgres_processes():
    """The benchmark's own PostgreSQL: its postmaster (from postmaster.pid) and children."""
    import psutil

    pgdata = Path(os.environ["RAG_BENCH_PGDATA"])
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


def set_priority(niceness: int) -> None:
    """This process and the benchmark's PostgreSQL (parallel index workers are forked from the
    postmaster later and inherit its value)."""
    os.setpriority(os.PRIO_PROCESS, 0, niceness)
    for process in postgres_processes():
        try:
            process.nice(niceness)
        except Exception:  # a backend that just exited
            pass


class MemorySampler:
    """Peak PSS (shared pages counted once) of the PostgreSQL processes, sampled every second."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            total = 0
            for process in postgres_processes():
                try:
                    total += process.memory_full_info().pss
                except Exception:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(1.0)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def base_set(dataset: Path, cache_dir: Path, say) -> tuple[list[str], np.ndarray]:
    from apps.ingestion.embedding import embed_passages

    texts = [" ".join(json.loads(line)["text"].split())[:1200]
             for line in open(dataset / "corpus.jsonl", encoding="utf-8")]
    cache = cache_dir / f"scifact-{len(texts)}-base.npy"
    if cache.exists():
        return texts, np.load(cache)
    started = time.monotonic()
    base = np.array(embed_passages(texts), dtype=np.float32)
    say(f"embedded {len(texts)} SciFact abstracts with the product's model in {time.monotonic() - started:.0f} s "
        f"(load {load_average()})")
    np.save(cache, base)
    return texts, base


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ").replace("\r", " ")


class Corpus:
    """The benchmark table, grown in steps; ``vectors`` maps chunk id - 1 to its vector."""

    def __init__(self, dataset: Path, work: Path, capacity: int, say):
        from django.contrib.auth import get_user_model

        from apps.corpus.models import Collection

        self.say, self.work = say, work
        self.texts, self.base = base_set(dataset, work, say)
        self.vectors = np.lib.format.open_memmap(work / "vectors.npy", mode="r+" if (work / "vectors.npy").exists() else "w+",
                                                 dtype=np.float32, shape=(capacity, DIMENSIONS))
        self.owner, _ = get_user_model().objects.get_or_create(username="bench-owner")
        if not Collection.objects.filter(name__startswith="bench-").exists():
            self._create_collections()
        self.collections = list(Collection.objects.filter(name__startswith="bench-").order_by("id"))
        self.collection_of = np.load(work / "collections.npy") if (work / "collections.npy").exists() else None

    def _create_collections(self) -> None:
        from apps.corpus.models import Collection, Document

        for c in range(COLLECTIONS):
            collection = Collection.objects.create(name=f"bench-{c:03d}", created_by=self.owner)
            collection.grants.create(user=self.owner, level="manage")  # as collection_create does
            Document.objects.bulk_create([
                Document(collection=collection, title=f"bench-{c}-{d}.txt", file="bench", sha256=f"bench-{c}-{d}",
                         size_bytes=1, status=Document.Status.INDEXED)
                for d in range(DOCUMENTS_PER_COLLECTION)
            ])

    def size(self) -> int:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM corpus_chunk")
            return cursor.fetchone()[0]

    def _base_tsvectors(self) -> list[str]:
        """The search_vector of every base text, as the pipeline writes it (title A, text B)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT (setweight(to_tsvector('english', ''), 'A') || "
                           "setweight(to_tsvector('english', t), 'B'))::text FROM unnest(%s::text[]) AS t",
                           [self.texts])
            return [_escape(row[0]) for row in cursor.fetchall()]

    def grow(self, size: int) -> dict:
        """Top every collection up to size / COLLECTIONS chunks; rebuild indexes; vacuum."""
        from django.db import connection

        from apps.corpus.models import Document

        have = self.size()
        if have >= size:
            self.say(f"{have} chunks already loaded")
            return {}
        per_collection, before = size // COLLECTIONS, have // COLLECTIONS
        figures = {"size": size}
        set_priority(10)
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
            cursor.execute("DROP INDEX IF EXISTS chunk_search_vector_gin")
        tsv = self._base_tsvectors()
        rng = np.random.default_rng(size)
        collection_of = np.zeros(size, dtype=np.int64) if self.collection_of is None else np.resize(self.collection_of, size)
        started = time.monotonic()
        next_id = have + 1
        for collection in self.collections:
            documents = list(Document.objects.filter(collection=collection).order_by("id").values_list("id", flat=True))
            count = per_collection - before
            picks = rng.integers(0, len(self.texts), size=count)
            block = self.base[picks] + rng.normal(scale=NOISE, size=(count, DIMENSIONS)).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            block = np.round(block, 6).astype(np.float32)
            text = io.StringIO()
            np.savetxt(text, block, fmt="%.6f", delimiter=",")
            lines = text.getvalue().splitlines()
            out = io.StringIO()
            for i in range(count):
                position = before + i
                chunk_id = next_id + i
                out.write(f"{chunk_id}\t{documents[position % DOCUMENTS_PER_COLLECTION]}\t{collection.id}\t"
                          f"{position // DOCUMENTS_PER_COLLECTION}\t{_escape(self.texts[picks[i]])}\t1\t\t{{}}\t"
                          f"[{lines[i]}]\t{tsv[picks[i]]}\n")
            with connection.cursor() as cursor, cursor.connection.cursor().copy(
                "COPY corpus_chunk (id, document_id, collection_id, ordinal, text, page_number, section_title, "
                "metadata, embedding, search_vector) FROM STDIN"
            ) as copy:
                copy.write(out.getvalue())
            self.vectors[next_id - 1: next_id - 1 + count] = block
            collection_of[next_id - 1: next_id - 1 + count] = collection.id
            next_id += count
        self.vectors.flush()
        self.collection_of = collection_of
        np.save(self.work / "collections.npy", collection_of)
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('corpus_chunk', 'id'), %s)", [next_id - 1])
        figures["copy_s"] = time.monotonic() - started
        self.say(f"COPY of {next_id - 1 - have} chunks ({have} -> {next_id - 1}) in {figures['copy_s']:.0f} s "
                 f"(load {load_average()})")
        figures.update(self._build_indexes())
        set_priority(0)
        return figures

    def _build_indexes(self) -> dict:
        from django.db import connection

        figures = {}
        with connection.cursor() as cursor:
            raw = cursor.connection
            notices = []
            raw.add_notice_handler(lambda diag: notices.append(diag.message_primary))
            cursor.execute("SET maintenance_work_mem = %s", [os.environ.get("BENCH_MAINTENANCE_WORK_MEM", "3GB")])
            cursor.execute("SET max_parallel_maintenance_workers = 1")  # leader + 1 worker = the 2 cores
            cursor.execute("SHOW maintenance_work_mem")
            figures["maintenance_work_mem"] = cursor.fetchone()[0]
            for name, sql in (("hnsw", HNSW_SQL), ("gin", GIN_SQL)):
                started = time.monotonic()
                with MemorySampler() as memory:
                    cursor.execute(sql)
                figures[f"{name}_build_s"] = time.monotonic() - started
                figures[f"{name}_peak_pss_mb"] = memory.peak / 2**20
                self.say(f"{name.upper()} index built in {figures[f'{name}_build_s']:.0f} s, PostgreSQL peak PSS "
                         f"{figures[f'{name}_peak_pss_mb']:.0f} MiB (maintenance_work_mem "
                         f"{figures['maintenance_work_mem']}, 1 parallel worker; load {load_average()})")
            for step in ("VACUUM", "ANALYZE"):
                started = time.monotonic()
                cursor.execute(f"{step} corpus_chunk")
                figures[f"{step.lower()}_s"] = time.monotonic() - started
                self.say(f"{step} corpus_chunk in {figures[f'{step.lower()}_s']:.0f} s (load {load_average()})")
            figures["notices"] = notices
            for notice in notices:
                self.say(f"PostgreSQL notice: {notice}")
        return figures


def relation_sizes() -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'table (heap)', pg_size_pretty(pg_relation_size('corpus_chunk')) UNION ALL "
            "SELECT 'table with TOAST', pg_size_pretty(pg_table_size('corpus_chunk')) UNION ALL "
            "SELECT 'HNSW index', pg_size_pretty(pg_relation_size('chunk_embedding_hnsw')) UNION ALL "
            "SELECT 'GIN index', pg_size_pretty(pg_relation_size('chunk_search_vector_gin')) UNION ALL "
            "SELECT 'all indexes', pg_size_pretty(pg_indexes_size('corpus_chunk')) UNION ALL "
            "SELECT 'database', pg_size_pretty(pg_database_size(current_database()))"
        )
        return dict(cursor.fetchall())
