"""Parsing speed and output of unstructured's spaCy pipeline vs the one the product uses.

Parses the same files twice, each in a fresh process: with ``spacy_sentences="parser"`` (the
SPACY_SENTENCES setting)
(unstructured's own pipeline: tok2vec, tagger and the dependency parser on every paragraph)
and with the product's default (the sentence recogniser, tags only when asked for), then
checks that every file gave the same chunks (text, page, section, metadata) and prints both
times. Files: SciFact abstracts as .txt/.md (as bench/ingest.py writes them), 5-page text PDFs
and the sample corpus.

    .venv/bin/python bench/parse.py [--docs 600] [--pdfs 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def parse_all(out: Path, docs: int, pdfs: int, sentences: str) -> None:
    """In a child process: parse every file, write [chunks or error per file] and the time."""
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    import ingest

    from apps.ingestion import parsing

    parsing.warm_up(parsing.ParseTuning(spacy_sentences=sentences))  # the process's pipeline
    files = ingest.build_corpus(ingest.DATASET, docs, pdfs, 5, 0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for f in files:
            path = Path(tmp) / f.name
            path.write_bytes(f.data)
            paths.append(path)
        paths += sorted(p for p in (ROOT / "sample_corpus").iterdir() if p.suffix in parsing.SUPPORTED_EXTENSIONS)
        for path in paths[:3]:  # first-call costs outside the timing
            parsing.parse_and_chunk(path, path.name)
        results = []
        started = time.perf_counter()
        for path in paths:
            try:
                results.append([dataclasses.asdict(d) for d in parsing.parse_and_chunk(path, path.name)])
            except Exception as exc:  # noqa: BLE001 - compared like any other outcome
                results.append(f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - started
        from unstructured.nlp import tokenize

        out.write_text(json.dumps({"seconds": seconds, "files": len(paths), "results": results,
                                   "pipeline": tokenize._get_nlp().pipe_names}, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--pdfs", type=int, default=4)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sentences", default="senter", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        parse_all(args.child, args.docs, args.pdfs, args.sentences)
        return
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("parser", "senter"):
            out = Path(tmp) / f"{mode}.json"
            subprocess.run([sys.executable, __file__, "--docs", str(args.docs), "--pdfs", str(args.pdfs), "--child", str(out),
                            "--sentences", mode], check=True, stderr=subprocess.DEVNULL)
            runs[mode] = json.loads(out.read_text())
            print(f"{mode:6s} {runs[mode]['pipeline']}: {runs[mode]['files']} files in {runs[mode]['seconds']:.1f} s", flush=True)
    same = sum(a == b for a, b in zip(runs["parser"]["results"], runs["senter"]["results"], strict=True))
    print(f"identical chunks for {same} of {runs['parser']['files']} files; "
          f"speed-up {runs['parser']['seconds'] / runs['senter']['seconds']:.2f}x (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
