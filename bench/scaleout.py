"""Scale-out of ingestion (issue 7): the production configuration, a Redis broker on TCP
(the system Redis at 127.0.0.1:6379, one otherwise unused database number, flushed before
and after) and PostgreSQL (+ pgvector: a fresh embedded server, since the system
PostgreSQL here has no pgvector), with 1, 2 and 4 worker processes, each a separate
`celery worker --concurrency 1` process consuming parse,embed,celery (what adding worker
hosts does), on the same corpus as bench/ingest.py (text abstracts and text PDFs).

Then it prints the capacity arithmetic for a site with N GPU nodes and M worker nodes,
from the measured per-worker figure and explicit, parameterised assumptions.

    make bench-scaleout      # or: .venv/bin/python bench/scaleout.py [--workers 1,2,4] [--redis-db 9]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest  # noqa: E402
from ingest import ROOT, say  # noqa: E402


def flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def capacity(pdf_pages_per_s_per_worker: float, *, workers_per_node: float, m_nodes: int, n_gpu: int,
             gpu_tokens_per_s: float, gpu_streams: int, answer_tokens: int, ask_interval_s: float) -> str:
    pages_h = pdf_pages_per_s_per_worker * 3600
    site_pages_h = pages_h * workers_per_node * m_nodes
    per_stream = gpu_tokens_per_s / gpu_streams
    answer_s = answer_tokens / per_stream
    askers_per_stream = ask_interval_s / answer_s
    askers = n_gpu * gpu_streams * askers_per_stream
    return (f"ingestion: {pdf_pages_per_s_per_worker:.2f} pages/s/worker x 3600 = {pages_h:,.0f} pages/h/worker; "
            f"x {workers_per_node:g} workers/node x M={m_nodes} nodes = {site_pages_h:,.0f} pages/h\n"
            f"askers: {gpu_tokens_per_s:g} tok/s / {gpu_streams} streams = {per_stream:.1f} tok/s per stream; "
            f"{answer_tokens}-token answer = {answer_s:.1f} s; one question per {ask_interval_s:g} s per asker -> "
            f"{askers_per_stream:.2f} askers per stream; x {gpu_streams} streams x N={n_gpu} = {askers:,.0f} concurrent askers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=ingest.DATASET)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--pdfs", type=int, default=8)
    parser.add_argument("--pdf-pages", type=int, default=5)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--phases", default="text,pdf")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="the production-style broker (loopback)")
    parser.add_argument("--redis-db", type=int, default=9, help="a database number nothing else uses: it is flushed")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    broker = f"{args.redis.rstrip('/')}/{args.redis_db}"
    base = Path(tempfile.mkdtemp(prefix="bench-scaleout-", dir=ROOT / "var" / "bench"))
    say(f"machine: {ingest.machine_line()}; work dir {base}")
    files = ingest.build_corpus(args.dataset, args.docs, args.pdfs, args.pdf_pages, 0)
    phases = tuple(args.phases.split(","))
    pg = None
    runs = []
    try:
        flush(broker)
        pg, _, broker = ingest.setup_environment(base, broker)
        for n in [int(x) for x in args.workers.split(",")]:
            runs.append(ingest.run_configuration(n, files=files, database=pg.url, broker=broker, log_dir=base,
                                                 concurrency=1, phases=phases, timeout=args.timeout, tag="s"))
            flush(broker)
    finally:
        flush(broker)
        if pg is not None:
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)

    say(f"\n== scale-out (separate worker processes, concurrency 1 each; load average now {os.getloadavg()[0]:.1f})")
    one = runs[0]["phases"]
    for r in runs:
        cells = []
        for phase in phases:
            p = r["phases"].get(phase)
            if p:
                cells.append(f"{phase} {p.chunks_per_s:.2f} chunks/s {p.pages_per_s:.2f} pages/s "
                             f"({p.chunks_per_s / one[phase].chunks_per_s:.2f}x)")
        say(f"{r['workers']} worker(s): " + "; ".join(cells) + f"; peak RSS {r['peak_rss_total'] / 2**20:.0f} MiB")
    per_worker = one["pdf"].pages_per_s if "pdf" in one else one["text"].pages_per_s
    say("\n== capacity arithmetic (measured: pages/s per worker on 2 CPU cores; the rest are assumptions)")
    say("CPU vLLM (DESIGN.md, measured on this machine, SmolLM2-135M, 580 tok/s at 32 streams), 1 node:")
    say(capacity(per_worker, workers_per_node=1, m_nodes=1, n_gpu=1, gpu_tokens_per_s=580, gpu_streams=32,
                 answer_tokens=300, ask_interval_s=60))
    say("ASSUMED GPU node (G=2,500 tok/s aggregate at 32 streams, an 8B model on one 24-48 GB GPU), "
        "worker nodes with 16 cores = 8 two-core workers, N=2, M=4:")
    say(capacity(per_worker, workers_per_node=8, m_nodes=4, n_gpu=2, gpu_tokens_per_s=2500, gpu_streams=32,
                 answer_tokens=300, ask_interval_s=60))
    if args.json:
        args.json.write_text(json.dumps([{**r, "phases": {k: {**vars(v), "chunks_per_s": v.chunks_per_s, "pages_per_s": v.pages_per_s}
                                                          for k, v in r["phases"].items()}} for r in runs], indent=2, default=str))


if __name__ == "__main__":
    main()
