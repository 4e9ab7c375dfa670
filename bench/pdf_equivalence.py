"""Do PDFs retrieve as well as text, whichever engine reads them? SciFact dev abstracts
loaded three times through the product (upload + ingest, sandboxed parse, chunking,
embedding, storage) into an embedded PostgreSQL: as .txt files, as PDFs read by pdfium (the
default), and as the same PDFs read by pdfminer (the ``PDF_TEXT_ENGINE`` setting). Each
collection is then searched with ``chunks_search`` exactly as ``manage.py evaluate`` does.
Prints nDCG@10 / recall@10 per mode and collection, chunk counts, how many PDFs gave
identical chunks under both engines, and a sample diff.

Each PDF is written by fpdf2 (the ``bench`` extra) with DejaVu Sans embedded as a Unicode
TrueType font (Type0/CIDFontType2 with a ToUnicode map), so every character of the abstract is
in the text layer, as a word processor's export would have it: the title in bold, the abstract
as one paragraph, a new page every ~3,000 characters. (Standard Helvetica with WinAnsi, as
sample_corpus/make_binary_samples.py writes its PDF, turns the characters outside cp1252
into "?": that cost -0.0103 hybrid nDCG@10 against the text files, docs/benchmarks.md.)

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
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "sample_corpus"))
DATASET = ROOT.parent / "shared" / "eval" / "scifact-dev"
PAGE_CHARACTERS = 3000


def unicode_fonts() -> tuple[Path, Path]:
    """DejaVu Sans regular and bold: shipped inside matplotlib (a locked dependency), else
    Debian's fonts-dejavu-core."""
    import importlib.util

    folders = []
    spec = importlib.util.find_spec("matplotlib")  # located, not imported
    for location in (spec.submodule_search_locations or []) if spec else []:
        folders.append(Path(location) / "mpl-data" / "fonts" / "ttf")
    folders.append(Path("/usr/share/fonts/truetype/dejavu"))
    for folder in folders:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    raise SystemExit("DejaVu Sans not found (matplotlib's mpl-data or apt-get install fonts-dejavu-core)")


def render_pdf(doc_id: str, text: str) -> tuple[str, bytes]:
    from fpdf import FPDF

    title, _, body = text.partition("\n\n")
    if not body:
        title, body = "", title
    body, title = " ".join(body.split()), " ".join(title.split())
    pages, rest = [], body
    while rest:
        cut = len(rest) if len(rest) <= PAGE_CHARACTERS else rest.rfind(" ", 0, PAGE_CHARACTERS)
        pages.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    regular, bold = unicode_fonts()
    pdf = FPDF(format="A4", unit="pt")
    pdf.set_creation_date(datetime(2026, 12, 1, tzinfo=timezone.utc))  # byte-for-byte reproducible
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.set_margins(72, 72, 72)
    pdf.set_auto_page_break(True, margin=60)
    for number, page in enumerate(pages or [""]):
        pdf.add_page()
        if number == 0 and title:
            pdf.set_font("DejaVu", "B", 13)
            pdf.multi_cell(0, 17, title, align="L")
            pdf.ln(16)
        pdf.set_font("DejaVu", "", 11)
        pdf.multi_cell(0, 14, page, align="L")  # left: justified text spaces words apart, pdfminer splits them
    return f"{doc_id}.pdf", bytes(pdf.output())


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
    from django.conf import settings

    from apps.corpus.models import Chunk
    from apps.retrieval.evaluation import MODES, as_text_file, dataset_evaluate, dataset_ingest, dataset_load

    data = dataset_load(args.dataset, max_documents=args.max_documents)
    suffix = f"-{args.max_documents}" if args.max_documents else ""
    print(f"{args.dataset}: {len(data.corpus)} documents, {len(data.queries)} queries "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    variants = [("text files", "txt", None, as_text_file), ("PDFs, pdfium", "pdf-pdfium", "pdfium", render_pdf),
                ("PDFs, pdfminer", "pdf-pdfminer", "pdfminer", render_pdf)]
    results, chunks, default_engine = {}, {}, settings.PDF_TEXT_ENGINE
    store = ROOT / "var" / "bench"
    for label, tag, engine, render in variants:
        saved = store / f"pdf-equivalence-{tag}{suffix}.json"
        if tag not in args.variants.split(","):
            if saved.exists():
                kept = json.loads(saved.read_text())
                results[label], chunks[tag] = kept["scores"], kept["chunks"]
            continue
        if engine:
            settings.PDF_TEXT_ENGINE = engine  # passed to the sandboxed parse children with each job
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
    settings.PDF_TEXT_ENGINE = default_engine

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
    _compare_with_text(chunks["txt"], a)


def _compare_with_text(text_chunks: dict, pdf_chunks: dict) -> None:
    """How the PDFs' chunks (pdfium) differ from the text files': not at all (whitespace
    aside), only where the chunks are cut (the same words in the same order), or in words."""
    def texts(rows):
        return [" ".join(text.split()) for _, text in rows]

    same = [d for d in pdf_chunks if texts(pdf_chunks[d]) == texts(text_chunks.get(d, []))]
    cut = [d for d in pdf_chunks if d not in same
           and " ".join(texts(pdf_chunks[d])) == " ".join(texts(text_chunks.get(d, [])))]
    words = [d for d in pdf_chunks if d not in same and d not in cut]
    print(f"\nPDFs (pdfium) vs text files: {len(same)} of {len(pdf_chunks)} with the same chunks (whitespace aside), "
          f"{len(cut)} with the same words cut into chunks differently, {len(words)} with other words")
    for doc_id in words[:3]:
        left, right = " ".join(texts(text_chunks.get(doc_id, []))).split(), " ".join(texts(pdf_chunks[doc_id])).split()
        print(f"{doc_id}: [-.txt-] {{+.pdf+}}")
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, left, right, autojunk=False).get_opcodes():
            if tag != "equal":
                print(f"  ... {' '.join(left[max(0, i1 - 4):i1])} [-{' '.join(left[i1:i2])}-] {{+{' '.join(right[j1:j2])}+}}")
    for doc_id in cut[:1]:
        print(f"{doc_id}: chunk lengths .txt {[len(t) for t in texts(text_chunks[doc_id])]}, "
              f".pdf {[len(t) for t in texts(pdf_chunks[doc_id])]}")


if __name__ == "__main__":
    main()
