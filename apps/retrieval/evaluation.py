"""Retrieval quality on a BEIR-format dataset, measured through the product's own path.

The corpus is loaded with the ingestion services (``document_upload`` + ``document_ingest``:
the same parsing, chunking, embedding and storage as any upload, one document per BEIR
record) into a collection, and each query is answered by ``chunks_search`` in the three
modes. A document's rank is the rank of its best chunk. Metrics: nDCG@k and recall@k.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model

from apps.corpus.models import Collection, Document
from apps.ingestion.embedding import embed_passages
from apps.ingestion.services import document_ingest, document_upload
from apps.retrieval.services import chunks_search

MODES = ("keyword", "vector", "hybrid")
EVALUATION_USER = "retrieval-evaluation"


@dataclass(frozen=True)
class Dataset:
    corpus: dict[str, str]  # doc id -> text (title prepended when the dataset has one)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> relevance


def dataset_load(path: Path, *, max_documents: int | None = None) -> Dataset:
    """Read corpus.jsonl, queries.jsonl and qrels (qrels.tsv or qrels/<split>.tsv).

    With ``max_documents``: the first N documents and only the queries whose relevant
    documents are all among them (a small, self-consistent slice for CI)."""
    path = Path(path)
    corpus: dict[str, str] = {}
    with open(path / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            title = (record.get("title") or "").strip()
            corpus[str(record["_id"])] = f"{title}\n\n{record['text']}" if title else record["text"]
            if max_documents and len(corpus) >= max_documents:
                break
    qrels_file = path / "qrels.tsv"
    if not qrels_file.exists():
        qrels_file = next((path / "qrels").glob("*.tsv"))
    qrels: dict[str, dict[str, int]] = {}
    for line in qrels_file.read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")[:3]
        if int(score) > 0:
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    qrels = {q: rel for q, rel in qrels.items() if all(d in corpus for d in rel)}
    queries = {}
    with open(path / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if str(record["_id"]) in qrels:
                queries[str(record["_id"])] = record["text"]
    return Dataset(corpus, queries, {q: qrels[q] for q in queries})


def evaluation_user():
    user, created = get_user_model().objects.get_or_create(username=EVALUATION_USER)
    if created:
        user.set_unusable_password()  # an owner for the evaluation collection, never signs in
        user.save()
    return user


def as_text_file(doc_id: str, text: str) -> tuple[str, bytes]:
    return f"{doc_id}.txt", text.encode("utf-8")


def dataset_ingest(dataset: Dataset, *, collection_name: str, progress: Callable[[str], None] = print,
                   render: Callable[[str, str], tuple[str, bytes]] = as_text_file) -> Collection:
    """Load every document through upload + ingest; skips documents already indexed.

    ``render(doc_id, text)`` gives the uploaded file's name and bytes (default: a UTF-8 .txt;
    bench/pdf_equivalence.py renders PDFs). The name must be ``<doc id>.<extension>``."""
    user = evaluation_user()
    collection, _ = Collection.objects.get_or_create(name=collection_name, defaults={"created_by": user})
    if not collection.grants.filter(user=user).exists():
        collection.reader_users.add(user)
    done = set(
        Document.objects.filter(collection=collection, status=Document.Status.INDEXED).values_list("title", flat=True)
    )
    done_ids = {title.rsplit(".", 1)[0] for title in done}
    todo = [(doc_id, text) for doc_id, text in dataset.corpus.items() if doc_id not in done_ids]
    started = time.monotonic()
    for number, (doc_id, text) in enumerate(todo, start=1):
        name, data = render(doc_id, text)
        upload = document_upload(
            collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data), size=len(data)
        )
        document_ingest(document_id=upload.document.id)
        if number % 250 == 0:
            progress(f"  ingested {number}/{len(todo)} documents in {time.monotonic() - started:.0f} s")
    return collection


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def documents_ranked(results: Iterable, k: int) -> list[str]:
    """Document ids (BEIR ids, from the stored file name) in order of their best chunk."""
    ranked: list[str] = []
    for chunk in results:
        doc_id = chunk.document_title.rsplit(".", 1)[0]
        if doc_id not in ranked:
            ranked.append(doc_id)
        if len(ranked) == k:
            break
    return ranked


def dataset_evaluate(dataset: Dataset, *, collection: Collection, k: int = 10, modes=MODES) -> dict[str, dict]:
    """nDCG@k and recall@k per mode, plus the top-1 cosine distance of every query."""
    user = evaluation_user()
    query_ids = list(dataset.queries)
    vectors = embed_passages([dataset.queries[q] for q in query_ids])
    scores: dict[str, dict] = {}
    for mode in modes:
        ndcg = recall = 0.0
        top_distances = []
        started = time.monotonic()
        for query_id, vector in zip(query_ids, vectors, strict=True):
            results = chunks_search(
                user=user, query=dataset.queries[query_id], query_vector=vector, collection_ids=[collection.id],
                k=4 * k, max_distance=None, mode=mode,
            )
            ranked = documents_ranked(results, k)
            ndcg += ndcg_at(ranked, dataset.qrels[query_id], k)
            recall += recall_at(ranked, dataset.qrels[query_id], k)
            top_distances.append(min((r.distance for r in results), default=2.0))
        n = len(query_ids) or 1
        scores[mode] = {
            "ndcg": ndcg / n, "recall": recall / n, "queries": len(query_ids),
            "ms_per_query": (time.monotonic() - started) * 1000 / n, "top_distances": top_distances,
        }
    return scores
