"""Evidence and answerability on policy-qa dev, without the LLM: how often the best evidence
window holds the expected fact, and the refusal trade-off at several score thresholds.

    .venv/bin/python bench/answer_evidence.py [--dataset ../shared/eval/policy-qa-dev] [--dump]

Ingests the documents through the product into the benchmark database (var/bench, kept
between runs), searches as the evaluation user and ranks evidence as answering does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_env import django_setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=str(Path(__file__).resolve().parents[1].parent / "shared/eval/policy-qa-dev"))
    parser.add_argument("--collection", default=None, help="default: the dataset folder's name")
    parser.add_argument("--dump", action="store_true", help="print each question's best windows")
    parser.add_argument("--thresholds", default="0.45,0.5,0.55,0.6,0.65,0.7")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a setting for this run, e.g. ANSWER_SAME_DOCUMENT_CHUNKS=0")
    args = parser.parse_args()
    django_setup()
    from django.conf import settings

    for assignment in args.set:
        name, value = assignment.split("=", 1)
        setattr(settings, name, type(getattr(settings, name))(value))

    from apps.answering.answerability import evidence_answers
    from apps.answering.evaluation import documents_ingest, evaluation_user, questions_load
    from apps.answering.evidence import rank_evidence, stored_sentence_vectors
    from apps.answering.quotation import quotation_from
    from apps.answering.steps import cite_candidates, evidence_candidates
    from apps.ingestion.embedding import embed_query
    from apps.retrieval.evaluation import evaluation_user as owner_user
    from apps.retrieval.services import chunks_search

    collection = documents_ingest(Path(args.dataset), collection_name=args.collection or Path(args.dataset).resolve().name, owner=owner_user(),
                                  progress=print)
    user = evaluation_user(collection)
    questions = questions_load(Path(args.dataset))
    rows = []
    for q in questions:
        vector = embed_query(q.text)
        sources = chunks_search(user=user, query=q.text, collection_ids=[collection.id], query_vector=vector)
        candidates = evidence_candidates(user=user, query=q.text, query_vector=vector,
                                         collection_ids=[collection.id], sources=sources)
        ranked = rank_evidence(q.text, vector, candidates, vectors_for=stored_sentence_vectors)
        sources, ranked = cite_candidates(sources, candidates, ranked)
        quote = quotation_from(ranked, q.text)
        hit1 = bool(quote) and all(e.lower() in quote.text.lower() for e in q.expect)
        hit3 = any(all(e.lower() in r.sentence.lower() for e in q.expect) for r in ranked[:3])
        doc_hit = any(s.document_title == q.doc for s in sources)
        rows.append((q, ranked, hit1, hit3, doc_hit, sources))
        if args.dump:
            mark = "UNANS" if not q.answerable else ("HIT " if hit1 else ("top3" if hit3 else "MISS"))
            print(f"\n[{mark}] {q.text}\n   expect={q.expect} doc_retrieved={doc_hit} ans={evidence_answers(q.text, ranked, [s.text for s in sources])}")
            for r in ranked[:3]:
                print(f"   {r.score:.3f} [{r.number}] {r.sentence[:220]!r}")
    answerable = [r for r in rows if r[0].answerable]
    print(f"\nanswerable {len(answerable)}: the quotation holds the fact {sum(r[2] for r in answerable)}, "
          f"in the best 3 {sum(r[3] for r in answerable)}, expected doc retrieved {sum(r[4] for r in answerable)}")
    for threshold in [float(t) for t in args.thresholds.split(",")]:
        settings.ANSWER_MIN_EVIDENCE_SCORE = threshold
        refused_unanswerable = sum(1 for q, ranked, h1, h3, dh, sources in rows if not q.answerable and not evidence_answers(q.text, ranked, [s.text for s in sources]).answerable)
        refused_answerable = sum(1 for q, ranked, h1, h3, dh, sources in rows if q.answerable and not evidence_answers(q.text, ranked, [s.text for s in sources]).answerable)
        kept_hits = sum(1 for q, ranked, hit1, h3, dh, sources in rows if q.answerable and hit1 and evidence_answers(q.text, ranked, [s.text for s in sources]).answerable)
        print(f"threshold {threshold:.2f}: unanswerable refused {refused_unanswerable}/{len(rows) - len(answerable)}, "
              f"answerable refused {refused_answerable}/{len(answerable)}, answerable whose quotation holds the fact and is kept {kept_hits}")


if __name__ == "__main__":
    main()
