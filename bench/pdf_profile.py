"""Where a text PDF's parse time goes: cProfile over ``parsing.parse_and_chunk`` on warm
5-page PDFs as bench/ingest.py writes them (three headed abstracts a page), in one process.

Prints the CPU time per page and the share of the parse spent in each stage (cumulative
times of the functions that implement it). Shares, not times, are the finding on a shared
machine.

    .venv/bin/python bench/pdf_profile.py [--pdfs 5] [--rounds 3] [--engine pdfium|pdfminer]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# (label, module path fragment, function name): cumulative time of that function.
STAGES = (
    ("whole parse_and_chunk", "parsing/__init__.py", "parse_and_chunk"),
    ("PDF -> elements (parse_pdf)", "parsing/pdf.py", "parse_pdf"),
    ("  pdfium lines and fonts (pdf_text.page_lines)", "parsing/pdf_text.py", "page_lines"),
    ("  pdfium text boxes (before: pdf._text_boxes)", "parsing/pdf.py", "_text_boxes"),
    ("  boxes -> elements (pdf_elements.page_elements)", "parsing/pdf_elements.py", "page_elements"),
    ("    typed by fonts (pdf_elements._element)", "parsing/pdf_elements.py", "_element"),
    ("  unstructured element_from_text (text-type guess)", "partition/text.py", "element_from_text"),
    ("    is_possible_narrative_text", "partition/text_type.py", "is_possible_narrative_text"),
    ("    spaCy sentences (sent_tokenize)", "nlp/tokenize.py", "sent_tokenize"),
    ("    spaCy tagger (pos_tag)", "parsing/offline.py", "pos_tag"),
    ("  reading order (sort_page_elements)", "partition/utils/sorting.py", "sort_page_elements"),
    ("chunking (chunk_elements)", "parsing/chunking.py", "chunk_elements"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdfs", type=int, default=5)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="parse every PDF this many times (profiled)")
    parser.add_argument("--engine", default="pdfium")
    parser.add_argument("--top", type=int, default=0, help="also print the N functions with the most own time")
    args = parser.parse_args()
    os.environ["PDF_TEXT_ENGINE"] = args.engine
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    import ingest

    from apps.ingestion import parsing

    parsing.warm_up()
    # Different PDFs for the warm-up, the plain round and each profiled round: unstructured
    # caches its spaCy calls per text (lru_cache), so a PDF parsed twice costs less the second time.
    sets = 2 + args.rounds
    files = [f for f in ingest.build_corpus(ingest.DATASET, 0, sets * args.pdfs, args.pages, 0) if f.phase == "pdf"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for f in files:
            paths.append(Path(tmp) / f.name)
            paths[-1].write_bytes(f.data)
        groups = [paths[i * args.pdfs:(i + 1) * args.pdfs] for i in range(sets)]
        for path in groups[0]:  # first-call costs outside the timing
            parsing.parse_and_chunk(path, path.name)
        cpu = time.process_time()
        for path in groups[1]:
            parsing.parse_and_chunk(path, path.name)
        plain = (time.process_time() - cpu) / (args.pdfs * args.pages)
        profile = cProfile.Profile()
        profile.enable()
        for group in groups[2:]:
            for path in group:
                parsing.parse_and_chunk(path, path.name)
        profile.disable()
    pages = args.rounds * args.pdfs * args.pages
    stats = pstats.Stats(profile).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = sum(ct for (f, _, name), (_, _, _, ct, _) in stats.items() if name == "parse_and_chunk" and "parsing/__init__" in f)
    print(f"engine {args.engine}: {1000 * plain:.1f} ms of CPU a page without the profiler; profiled {pages} pages, "
          f"{1000 * total / pages:.1f} ms a page under it (load average {os.getloadavg()[0]:.1f})")
    for label, fragment, function in STAGES:
        ct = sum(ct for (f, _, name), (_, _, _, ct, _) in stats.items() if name == function and fragment in f)
        if ct:
            print(f"  {label:<55s} {100 * ct / total:5.1f}%  ({1000 * ct / pages:.2f} ms a page)")
    if args.top:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
