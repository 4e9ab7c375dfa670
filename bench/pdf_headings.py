"""Do PDFs keep a document's headings, and retrieve as well as its source? The 25 policy
handbook pages of ../shared/eval/policy-qa-dev (Markdown with real headings, lists, bold
words and tables) rendered to PDF by fpdf2's HTML writer (headings larger and bold, the
body 11 pt, DejaVu Sans embedded, as a word processor's export has them), and read three
ways: the Markdown itself (its headings are the markup's: the truth), the PDFs by pdfium
(the default: element types from the fonts) and the same PDFs by pdfminer
(``PDF_TEXT_ENGINE=pdfminer``: unstructured's fast strategy, types guessed from the words).

1. Headings (no database): how many of the Markdown's headings each PDF reading finds as
   titles, how many of its titles are no heading, and the CPU time of the parse.
2. Retrieval (with ``--retrieval``): each reading loaded through the product (upload +
   ingest, sandboxed parse, chunking, embedding, storage) into its own collection, the 48
   answerable questions searched with ``chunks_search`` as ``manage.py evaluate`` does:
   nDCG@10 of the right page (qrels from the question's ``doc``) and evidence@10, the share
   of questions with the quoted evidence in one of the ten chunks.

    .venv/bin/python bench/pdf_headings.py [--retrieval] [--dataset ../shared/eval/policy-qa-dev]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATASET = ROOT.parent / "shared" / "eval" / "policy-qa-dev"


def render_pdf(doc_id: str, markdown_text: str) -> tuple[str, bytes]:
    """Markdown -> HTML -> PDF (fpdf2 write_html: h1 24 pt ... h6, bold, lists with
    bullets, tables), DejaVu Sans embedded. Images and links are dropped (nothing is
    fetched; a link keeps its text). Byte-for-byte reproducible."""
    import markdown
    from fpdf import FPDF
    from fpdf.fonts import FontFace
    from pdf_equivalence import unicode_fonts

    html = markdown.markdown(markdown_text, extensions=["tables"])
    html = re.sub(r"<img\b[^>]*>", "", html)
    html = re.sub(r"</?a\b[^>]*>", "", html)
    regular, _ = unicode_fonts()
    pdf = FPDF(format="A4", unit="pt")
    pdf.set_creation_date(datetime(2026, 12, 1, tzinfo=timezone.utc))
    for family, stem in (("DejaVu", "DejaVuSans"), ("DejaVuMono", "DejaVuSansMono")):
        for style, suffix in (("", ""), ("B", "-Bold"), ("I", "-Oblique"), ("BI", "-BoldOblique")):
            pdf.add_font(family, style, str(regular.parent / f"{stem}{suffix}.ttf"))
    pdf.set_margins(72, 72, 72)
    pdf.set_auto_page_break(True, margin=60)
    pdf.add_page()
    pdf.set_font("DejaVu", "", 11)
    mono = FontFace(family="DejaVuMono")
    pdf.write_html(html, font_family="DejaVu", tag_styles={"code": mono, "pre": mono})
    return f"{doc_id}.pdf", bytes(pdf.output())


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def headings(docs: dict[str, str]) -> dict:
    """Markdown headings found as PDF titles, per engine (parse_pdf directly, in this process)."""
    import tempfile

    from apps.ingestion import parsing
    from apps.ingestion.parsing.parsers import parse_markdown
    from apps.ingestion.parsing.pdf import parse_pdf
    from apps.ingestion.parsing.tuning import DEFAULTS, applied

    parsing.warm_up()
    result = {engine: {"found": 0, "titles": 0, "cpu": 0.0} for engine in ("pdfium", "pdfminer")}
    truth_count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for doc_id, text in docs.items():
            md, pdf = Path(tmp) / f"{doc_id}.md", Path(tmp) / f"{doc_id}.pdf"
            md.write_text(text, encoding="utf-8")
            pdf.write_bytes(render_pdf(doc_id, text)[1])
            truth = {_norm(el.text) for el in parse_markdown(md, md.name) if el.category == "Title"}
            truth_count += len(truth)
            for engine, counts in result.items():
                cpu = time.process_time()
                with applied(replace(DEFAULTS, pdf_text_engine=engine)):
                    titles = {_norm(el.text) for el in parse_pdf(pdf, pdf.name) if el.category == "Title"}
                counts["cpu"] += time.process_time() - cpu
                counts["found"] += len(truth & titles)
                counts["titles"] += len(titles)
    print(f"\n{len(docs)} documents, {truth_count} Markdown headings (load average {os.getloadavg()[0]:.1f})")
    for engine, c in result.items():
        label = "fonts" if engine == "pdfium" else "unstructured's guess"
        print(f"  PDF, {engine} ({label}): headings found as titles {c['found']}/{truth_count} = "
              f"{c['found'] / truth_count:.3f}; titles that are no heading {c['titles'] - c['found']} of {c['titles']}; "
              f"parse_pdf CPU {c['cpu']:.2f} s")
    return {"headings": truth_count, **result}


def retrieval(docs: dict[str, str], questions: list[dict], k: int) -> None:
    """Ingested in this process (``dataset_ingest``); the tasks an upload enqueues go to a
    throwaway embedded Redis that nobody consumes (without one, each upload waits for the
    broker's retries)."""
    import tempfile

    from rag_platform.embedded import start_redis

    redis = start_redis(Path(tempfile.mkdtemp(prefix="pdf-headings-redis-")), persistent=False)
    os.environ["CELERY_BROKER_URL"] = redis.url
    try:
        _retrieval(docs, questions, k)
    finally:
        redis.stop()


def _retrieval(docs: dict[str, str], questions: list[dict], k: int) -> None:
    import search_env

    search_env.django_setup()
    from django.conf import settings

    from apps.ingestion.embedding import embed_passages
    from apps.retrieval.evaluation import Dataset, dataset_evaluate, dataset_ingest, evaluation_user
    from apps.retrieval.services import chunks_search

    answerable = [q for q in questions if q.get("doc")]
    data = Dataset(corpus=docs, queries={str(i): q["q"] for i, q in enumerate(answerable)},
                   qrels={str(i): {Path(q["doc"]).stem: 1} for i, q in enumerate(answerable)})
    variants = [("Markdown", None, lambda d, t: (f"{d}.md", t.encode("utf-8"))),
                ("PDF, pdfium (fonts)", "pdfium", render_pdf), ("PDF, pdfminer (guess)", "pdfminer", render_pdf)]
    user = evaluation_user()
    vectors = embed_passages([q["q"] for q in answerable])
    print(f"\n{len(answerable)} answerable questions; nDCG@{k} of the right page, evidence@{k}")
    for label, engine, render in variants:
        if engine:  # the worker hands the parse children its settings (apps.ingestion.parse_settings)
            settings.PDF_TEXT_ENGINE = engine
        collection = dataset_ingest(data, collection_name=f"pdf-headings-{engine or 'md'}", render=render,
                                    progress=lambda m: None)
        scores = dataset_evaluate(data, collection=collection, k=k)
        line = f"  {label:<24s}" + "".join(f" {m} {scores[m]['ndcg']:.4f}" for m in scores)
        for mode in ("keyword", "vector", "hybrid"):
            hits = 0
            for q, vector in zip(answerable, vectors, strict=True):
                found = chunks_search(user=user, query=q["q"], query_vector=vector, collection_ids=[collection.id],
                                      k=k, max_distance=None, mode=mode)
                hits += any(_norm(q["evidence"]) in _norm(c.text) for c in found)
            line += f" | evidence {mode} {hits}/{len(answerable)}"
        from apps.corpus.models import Chunk

        rows = Chunk.objects.filter(collection=collection)
        line += f" | {rows.count()} chunks, {rows.exclude(section_title='').count()} with a section title"
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--retrieval", action="store_true", help="also load the three readings and search them")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    docs = {p.stem: p.read_text(encoding="utf-8") for p in sorted((args.dataset / "docs").glob("*.md"))}
    questions = [json.loads(line) for line in open(args.dataset / "questions.jsonl", encoding="utf-8")]
    headings(docs)
    if args.retrieval:
        retrieval(docs, questions, args.k)


if __name__ == "__main__":
    main()
