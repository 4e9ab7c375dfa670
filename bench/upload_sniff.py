"""What deciding an upload's type in the sandbox costs the process that received it.

For a few kinds of file, the median wall time of ``upload_file_type`` with a sandboxed child
per file (a single upload), with one child for all the files of a bulk upload
(``sniff_session``: a folder, a zip, a multi-file form), and of ``detect_file_type`` in this
process (what uploads did before), in a Django process that has loaded the embedding model as the web process does for
search, so the fork copies a realistic address space.

    .venv/bin/python bench/upload_sniff.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    import search_env

    search_env.django_setup()
    from apps.ingestion.embedding import embed_query
    from apps.ingestion.parsing import detect_file_type
    from apps.ingestion.sniffing import sniff_session, upload_file_type
    from tests import files

    embed_query("warm the model as the web process does for a query")
    samples = {
        "policy.md": b"# Travel\n\nTrips above 500 EUR need the head of unit's approval.\n" * 20,
        "report.pdf": files.text_pdf(),
        "table.docx": files.docx_with_table(),
        "noise.pdf": bytes(range(256)) * 64,  # refused: unstructured's guesser runs too
    }
    rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    print(f"process RSS {rss / 2**20:.0f} MiB, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in samples.items():
            path = Path(folder) / name
            path.write_bytes(data)
            timings = {}
            # the sandbox first: in this process, the in-process call would load libmagic
            # and the guesser into the parent, and every later child would inherit them warm
            for label, detect in (("a child per file", upload_file_type), ("one child per bulk upload", upload_file_type),
                                  ("in process", detect_file_type)):
                seconds, outcome = [], ""
                with sniff_session() if label.startswith("one child") else contextlib.nullcontext():
                    for _ in range(args.rounds):
                        started = time.perf_counter()
                        try:
                            outcome = detect(path, name)
                        except Exception as error:  # noqa: BLE001 - a refusal is an outcome too
                            outcome = type(error).__name__
                        seconds.append(time.perf_counter() - started)
                timings[label] = (statistics.median(seconds), outcome)
            print(f"{name:<12} " + "  ".join(f"{label}: {t * 1000:7.1f} ms ({o})" for label, (t, o) in timings.items()),
                  flush=True)


if __name__ == "__main__":
    main()
