"""Do PDFs retrieve as well as text, whichever engine reads them? SciFact dev abstracts
loaded three times through the product (upload + ingest, sandboxed parse, chunking,
embedding, storage) into an embedded PostgreSQL: as .txt files, as PDFs read by pdfium (the
default), and as the same PDFs read by pdfminer (``PDF_TEXT_ENGINE=pdfminer``). Each
collection is then searched with ``chunks_search`` exactly as ``manage.py evaluate`` does.
Prints nDCG@10 / recall@10 per mode and collection, chunk counts, how many PDFs gave
identical chunks under both engines, and a sample diff.

Each PDF is written like sample_corpus/make_binary_samples.py writes its PDF (standard
Helvetica, WinAnsi: characters outside cp1252 become "?"): the title as a heading, the
abstract as paragraphs, a new page every ~3,000 characters.

    .venv/bin/python bench/pdf_equivalence.py [--max-documents 2101] [--dataset ../shared/eval/scifact-dev]
    # or the three loads side by side, then the comparison:
    for v in txt pdf-pdfium pdf-pdfminer; do .venv/bin/python bench/pdf_equivalence.py --variants $v & done; wait
    .venv/bin/python bench/pdf_equivalence.py --variants none
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "sample_corpus"))
DATASET = ROOT.parent / "shared" / "eval" / "scifact-dev"
PAGE_CHARACTERS = 3000


def render_pdf(doc_id: str, text: str) -> tuple[str, bytes]:
    from make_binary_samples import build_pdf

    title, _, body = text.partition("\n\n")
    if not body:
        title, body = "", title
    body = " ".join(body.split()).encode("cp1252", "replace").decode("cp1252")
    title = " ".join(title.split()).encode("cp1252", "replace").decode("cp1252")
    pages, rest = [], body
    while rest:
        cut = len(rest) if len(rest) <= PAGE_CHARACTERS else rest.rfind(" ", 0, PAGE_CHARACTERS)
        pages.append([("para", rest[:cut].strip())])
        rest = rest[cut:].strip()
    if title:
        pages[0].insert(0, ("heading", title))
    return f"{doc_id}.pdf", build_pdf(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--max-documents", type=int, help="the first N documents and the queries they answer")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--variants", default="txt,pdf-pdfium,pdf-pdfminer",
                        help="which loads to run here (several processes can share the database: "
                             "each writes its result under var/bench/, the comparison uses all there are)")
    args = parser.parse_args()

    import search_env

    search_env.django_setup()
    from apps.corpus.models import Chunk
    from apps.retrieval.evaluation import MODES, as_text_file, dataset_evaluate, dataset_ingest, dataset_load

    data = dataset_load(args.dataset, max_documents=args.max_documents)
    suffix = f"-{args.max_documents}" if args.max_documents else ""
    print(f"{args.dataset}: {len(data.corpus)} documents, {len(data.queries)} queries "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    variants = [("text files", "txt", None, as_text_file), ("PDFs, pdfium", "pdf-pdfium", "pdfium", render_pdf),
                ("PDFs, pdfminer", "pdf-pdfminer", "pdfminer", render_pdf)]
    results, chunks = {}, {}
    store = ROOT / "var" / "bench"
    for label, tag, engine, render in variants:
        saved = store / f"pdf-equivalence-{tag}{suffix}.json"
        if tag not in args.variants.split(","):
            if saved.exists():
                kept = json.loads(saved.read_text())
                results[label], chunks[tag] = kept["scores"], kept["chunks"]
            continue
        if engine:
            os.environ["PDF_TEXT_ENGINE"] = engine  # inherited by the sandboxed parse children
        started = time.monotonic()
        collection = dataset_ingest(data, collection_name=f"pdf-equivalence-{tag}{suffix}", render=render,
                                    progress=lambda m: print(m, flush=True))
        seconds = time.monotonic() - started
        rows = Chunk.objects.filter(collection=collection).order_by("document__title", "ordinal")
        chunks[tag] = {}
        for title, text, page in rows.values_list("document__title", "text", "page_number"):
            chunks[tag].setdefault(title.rsplit(".", 1)[0], []).append([page, text])
        results[label] = dataset_evaluate(data, collection=collection, k=args.k)
        print(f"{label}: {sum(len(v) for v in chunks[tag].values())} chunks from {len(chunks[tag])} documents, "
              f"loaded in {seconds:.0f} s", flush=True)
        saved.write_text(json.dumps({"scores": results[label], "chunks": chunks[tag]}))
    os.environ.pop("PDF_TEXT_ENGINE", None)

    print(f"\n{'collection':<16}" + "".join(f"{m + ' nDCG@' + str(args.k):>18}{'recall':>8}" for m in MODES))
    for label, scores in results.items():
        print(f"{label:<16}" + "".join(f"{scores[m]['ndcg']:>18.4f}{scores[m]['recall']:>8.4f}" for m in MODES))
    if len(results) < len(variants):
        print(f"(only {', '.join(results)} so far: run the other variants for the comparison)")
        return
    hybrid = {label: scores["hybrid"]["ndcg"] for label, scores in results.items()}
    print(f"hybrid nDCG@{args.k}: pdfium - pdfminer {hybrid['PDFs, pdfium'] - hybrid['PDFs, pdfminer']:+.4f}, "
          f"pdfium - text {hybrid['PDFs, pdfium'] - hybrid['text files']:+.4f}, "
          f"pdfminer - text {hybrid['PDFs, pdfminer'] - hybrid['text files']:+.4f}")
    a, b = chunks["pdf-pdfium"], chunks["pdf-pdfminer"]
    same = [d for d in a if a[d] == b.get(d)]
    print(f"PDFs with identical chunks (text and page) under both engines: {len(same)} of {len(a)}")
    differing = [d for d in a if a[d] != b.get(d)]
    for doc_id in differing[:3]:
        print(f"\n--- {doc_id}.pdf, pdfminer\n+++ {doc_id}.pdf, pdfium")
        left = [f"p{p}: {t}" for p, t in b.get(doc_id, [])]  # JSON turns the tuples into lists
        right = [f"p{p}: {t}" for p, t in a[doc_id]]
        sys.stdout.writelines(line + "\n" for line in difflib.unified_diff(left, right, lineterm="", n=0))


if __name__ == "__main__":
    main()
