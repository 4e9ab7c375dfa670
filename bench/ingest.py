"""Ingestion benchmark: upload -> indexed through the product's service and real Celery
workers, against a fresh embedded PostgreSQL (+ pgvector).

Corpus (generated in a temp dir, deleted at the end):
* text: SciFact dev abstracts (../shared/eval/scifact-dev/corpus.jsonl), alternately .txt and
  .md (a heading, then the abstract);
* text PDFs: multi-page PDFs with a real text layer, written by hand like
  sample_corpus/make_binary_samples.py (one abstract per heading, three per page);
* scans: pages of abstract text rendered to an image with Pillow and wrapped in a PDF
  (no text layer), so the pipeline OCRs them with tesseract.

For each worker configuration (default: 1 worker, then 2 workers, each a separate
`celery worker` process consuming parse,embed,celery with the stack's pool processes,
``--concurrency`` to change) the three phases run one after another, each timed from the first
upload (apps.ingestion.services.document_upload, inside ``bulk_enqueue()`` as ``manage.py
ingest FOLDER`` and a .zip upload do it) to the last document indexed. Before timing, every
pool process has loaded the parsers and the model and a warm-up document is ingested. RSS of
each worker process and all its children is sampled every 0.25 s, PSS every 2 s (psutil), and
each phase reports where the machine's CPU time went (the workers, the uploading process, the
rest: PostgreSQL and the broker). ``--abstracts-per-doc 10`` makes the text files documents
of ten abstracts (~27 chunks) instead of one (~2.7).

The raw encode rate of the same chunk texts, in this process with the same model and batch
size (apps.ingestion.embedding), is measured before the workers start (the text files parsed
here with the pipeline's parser and settings) and again after they stop (the chunks as the
pipeline stored them); "pipeline chunks/s vs raw encode" uses the mean of the two, because
the machine is shared and its load drifts.

    make bench-ingest        # or: .venv/bin/python bench/ingest.py [--docs 500] [--workers 1,2]
    make bench-ingest-ratio  # raw, pipeline, raw, ... (1 worker; 1 vs 2 pool processes)

Broker: an embedded redis-server on a Unix socket (rag_platform.embedded.start_redis), or
--broker URL (bench/scaleout.py passes the system Redis).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASET = ROOT.parent / "shared" / "eval" / "scifact-dev"

PHASES = ("text", "pdf", "scan")


def say(msg: str) -> None:
    print(msg, flush=True)


# -- corpus -----------------------------------------------------------------------------------


@dataclass
class CorpusFile:
    name: str
    data: bytes
    phase: str
    pages: int


def _abstracts(dataset: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in open(dataset / "corpus.jsonl", encoding="utf-8")]
    return [(r["_id"], " ".join(r["text"].split())) for r in rows if len(r["text"]) > 200]


def _title(text: str) -> str:
    return " ".join(text.split()[:8]).rstrip(".,;:")


def _ascii(text: str) -> str:
    return text.encode("cp1252", "replace").decode("cp1252")


def build_corpus(dataset: Path, docs: int, pdfs: int, pdf_pages: int, scans: int, per_doc: int = 1) -> list[CorpusFile]:
    sys.path.insert(0, str(ROOT / "sample_corpus"))
    from make_binary_samples import build_pdf

    abstracts = _abstracts(dataset)
    files: list[CorpusFile] = []
    per_doc = max(1, per_doc)
    for i in range(docs):
        group = abstracts[i * per_doc: (i + 1) * per_doc]
        if not group:
            break
        doc_id = group[0][0]
        if i % 2:
            body = "\n\n".join(f"{'#' if per_doc == 1 else '##'} {_title(text)}\n\n{text}" for _, text in group)
            files.append(CorpusFile(f"scifact-{doc_id}.md", f"{body}\n".encode(), "text", 1))
        else:
            files.append(CorpusFile(f"scifact-{doc_id}.txt", ("\n\n".join(text for _, text in group) + "\n").encode(), "text", 1))
    pool = abstracts[docs * per_doc:] or abstracts
    cursor = 0

    def take() -> str:
        nonlocal cursor
        text = pool[cursor % len(pool)][1]
        cursor += 1
        return text

    for p in range(pdfs):
        pages = []
        for _ in range(pdf_pages):
            blocks = []
            for _ in range(3):  # about 3 x 700 characters fill an A4 page at 11 pt
                text = _ascii(take())[:700]
                blocks += [("heading", _title(text)), ("para", text)]
            pages.append(blocks)
        files.append(CorpusFile(f"report-{p:03d}.pdf", build_pdf(pages), "pdf", pdf_pages))
    for s in range(scans):
        files.append(CorpusFile(f"scan-{s:03d}.pdf", _scanned_page(take() + " " + take()), "scan", 1))
    return files


def _scanned_page(text: str) -> bytes:
    """One A4 page at 200 dpi: text drawn in black on white, saved as an image-only PDF."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    width, height = 1654, 2339
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 30)
    except OSError:
        font = ImageFont.load_default(size=30)
    y = 160
    for line in textwrap.wrap(text, 80):
        draw.text((140, y), line, fill=0, font=font)
        y += 44
        if y > height - 160:
            break
    out = io.BytesIO()
    image.save(out, "PDF", resolution=200.0)
    return out.getvalue()


# -- processes --------------------------------------------------------------------------------


def start_database(base: Path):
    from rag_platform.embedded import start_postgres

    return start_postgres(base / "postgres", database="bench_ingest")


def migrate(env: dict) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def start_workers(n: int, *, database: str, broker: str, log_dir: Path, concurrency: int = 1, tag: str = "w") -> list:
    sys.path.insert(0, str(ROOT))
    from tests.servers import start_worker

    workers = []
    for i in range(n):
        workers.append(start_worker(
            database=database, broker=broker, log_path=log_dir / f"{tag}{n}-{i}.log", concurrency=concurrency,
            hostname=f"bench-{tag}{n}-{i}-{os.getpid()}@%h", RAG_DATA_DIR=os.environ["RAG_DATA_DIR"],
        ))
    deadline = time.monotonic() + 300
    for i, worker in enumerate(workers):
        log = log_dir / f"{tag}{n}-{i}.log"
        # Ready, and every pool process has loaded the parsers and the model (warm_pool_process).
        while not ((text := log.read_text(errors="replace") if log.exists() else "")
                   and " ready." in text and text.count("embedding model loaded in") >= concurrency):
            if worker.poll() is not None or time.monotonic() > deadline:
                stop_workers(workers)
                raise RuntimeError(f"worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
    return workers


def stop_workers(workers) -> None:
    from tests.servers import stop_process_group

    for worker in workers:
        stop_process_group(worker)


def _tree_sum(root, measure) -> float:
    """``measure(process)`` summed over ``root`` and its descendants; processes that end
    meanwhile count nothing."""
    import psutil

    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return total
    for proc in procs:
        try:
            total += measure(proc)
        except psutil.Error:
            pass
    return total


class MemorySampler:
    """Peak memory of each worker process tree (the worker, its pool processes, parse
    children): RSS, which counts the pages forked processes share once per process, and PSS
    (proportional set size: a shared page split between its sharers), the memory the tree
    really takes."""

    def __init__(self, workers, interval: float = 0.25):
        import psutil

        self.roots = [psutil.Process(w.pid) for w in workers]
        self.interval = interval
        self.peak_total = 0
        self.peak_per_worker = [0] * len(self.roots)
        self.peak_pss_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self, root, with_pss: bool) -> tuple[int, int]:
        rss = _tree_sum(root, lambda proc: proc.memory_info().rss)
        # PSS: the kernel walks the page tables, which is costly, so every 2 s only.
        pss = _tree_sum(root, lambda proc: proc.memory_full_info().pss) if with_pss else 0
        return rss, pss

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            with_pss = tick % 8 == 0
            tick += 1
            values = [self._tree(r, with_pss) for r in self.roots]
            self.peak_per_worker = [max(a, b[0]) for a, b in zip(self.peak_per_worker, values)]
            self.peak_total = max(self.peak_total, sum(v[0] for v in values))
            if with_pss:
                self.peak_pss_total = max(self.peak_pss_total, sum(v[1] for v in values))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# -- the measured run -------------------------------------------------------------------------


def _tree_cpu(pids) -> float:
    """CPU seconds of these processes and all their descendants, reaped ones included."""
    import psutil

    def cpu(proc) -> float:
        t = proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    total = 0.0
    for pid in pids:
        try:
            total += _tree_sum(psutil.Process(pid), cpu)
        except psutil.Error:
            pass
    return total


def cpu_snapshot(worker_pids) -> tuple[float, float, float]:
    """(machine busy CPU seconds, the workers' trees, this process) for ``cpu_spent``."""
    import psutil

    machine = psutil.cpu_times()
    busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    me = psutil.Process().cpu_times()
    return busy, _tree_cpu(worker_pids), me.user + me.system


def cpu_spent(before, after) -> str:
    busy, workers, me = (b - a for a, b in zip(before, after))
    return (f"CPU seconds: machine {busy:.1f} = workers (pool, parse children) {workers:.1f} + uploads "
            f"(this process) {me:.1f} + PostgreSQL, broker and the rest {busy - workers - me:.1f}")


@dataclass
class PhaseResult:
    phase: str
    documents: int
    pages: int
    chunks: int
    seconds: float
    upload_seconds: float
    failed: int
    parse_seconds: float = 0.0  # sandboxed parsing, as the worker recorded it (Document.parse_seconds)
    encode_seconds: float = 0.0  # the model inside the worker (Document.embed_seconds)
    cpu: str = ""  # where the machine's CPU time went during the phase

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.seconds


def run_phase(collection, user, files: list[CorpusFile], phase: str, timeout: float, worker_pids=()) -> PhaseResult:
    import io

    from django.db.models import Count, Sum

    from apps.corpus.models import Document
    from apps.ingestion.services import bulk_enqueue, document_upload

    chosen = [f for f in files if f.phase == phase]
    if not chosen:
        return PhaseResult(phase, 0, 0, 0, float("nan"), 0.0, 0)
    cpu_before = cpu_snapshot(worker_pids)
    started = time.monotonic()
    ids = []
    with bulk_enqueue():  # a bulk import, as manage.py ingest FOLDER and a .zip upload do it
        for f in chosen:
            result = document_upload(collection=collection, uploaded_by=user, name=f.name, content=io.BytesIO(f.data), size=len(f.data))
            ids.append(result.document.id)
    uploaded = time.monotonic() - started
    deadline = started + timeout
    while True:
        left = Document.objects.filter(id__in=ids, status__in=Document.UNFINISHED).count()
        if not left:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{phase}: {left} of {len(ids)} documents not finished after {timeout:.0f} s")
        time.sleep(0.2)
    seconds = time.monotonic() - started
    cpu = cpu_spent(cpu_before, cpu_snapshot(worker_pids))
    docs = Document.objects.filter(id__in=ids)
    totals = docs.filter(status=Document.Status.INDEXED).aggregate(
        chunks=Sum("chunk_count"), pages=Sum("page_count"), n=Count("id"),
        parse=Sum("parse_seconds"), encode=Sum("embed_seconds"))
    failed = docs.filter(status=Document.Status.FAILED)
    for d in failed[:5]:
        say(f"  FAILED {d.title}: {d.failure_reason}")
    pages = sum(f.pages for f in chosen)
    return PhaseResult(phase, totals["n"], pages, totals["chunks"] or 0, seconds, uploaded, failed.count(),
                       totals["parse"] or 0.0, totals["encode"] or 0.0, cpu)


def run_configuration(n_workers: int, *, files, database: str, broker: str, log_dir: Path, concurrency: int,
                      phases=PHASES, timeout: float, tag: str = "w") -> dict:
    """Start n workers, warm them, time each phase, stop them. A new collection per run."""
    from django.contrib.auth import get_user_model

    from apps.corpus.models import Collection

    user, _ = get_user_model().objects.get_or_create(username="bench-ingest")
    collection = Collection.objects.create(name=f"bench-ingest-{tag}{n_workers}x{concurrency}-{time.time_ns()}", created_by=user)
    collection.grants.create(user=user, level="manage")  # as collection_create gives the creator
    say(f"\n== {n_workers} worker process(es) x concurrency {concurrency} (load average {os.getloadavg()[0]:.1f})")
    workers = start_workers(n_workers, database=database, broker=broker, log_dir=log_dir, concurrency=concurrency, tag=tag)
    try:
        with MemorySampler(workers) as memory:
            # Warm-up: every worker process loads the model and the parsers once.
            warm = [CorpusFile(f"warmup-{n_workers}-{i}-{time.time_ns()}.txt",
                               f"Warm-up document {i} {time.time_ns()}: the quick brown fox.".encode(), "warm", 1)
                    for i in range(n_workers * concurrency * 2)]
            run_phase(collection, user, warm, "warm", timeout)
            results = {}
            for phase in phases:
                r = run_phase(collection, user, files, phase, timeout, [w.pid for w in workers])
                if r.documents or r.failed:
                    results[phase] = r
                    say(f"  {phase:5s}: {r.documents} docs, {r.pages} pages, {r.chunks} chunks in {r.seconds:.1f} s "
                        f"(uploads {r.upload_seconds:.1f} s) -> {r.docs_per_s:.2f} docs/s, {r.chunks_per_s:.2f} chunks/s, "
                        f"{r.pages_per_s:.2f} pages/s; failed {r.failed}")
                    summed = f" (summed over {n_workers} workers)" if n_workers > 1 else ""
                    say(f"         where the time went{summed}: parsing {r.parse_seconds:.1f} s, encoding in the worker "
                        f"{r.encode_seconds:.1f} s ({r.chunks / max(r.encode_seconds, 1e-9):.1f} chunks/s), "
                        f"uploads {r.upload_seconds:.1f} s, the rest (claims, storing, tasks, waiting) "
                        f"{r.seconds - r.parse_seconds - r.encode_seconds - r.upload_seconds:.1f} s")
                    say(f"         {r.cpu} ({os.cpu_count()} cores x {r.seconds:.1f} s = {os.cpu_count() * r.seconds:.1f})")
        say(f"  peak RSS (worker + children): total {memory.peak_total / 2**20:.0f} MiB, per worker "
            + ", ".join(f"{p / 2**20:.0f}" for p in memory.peak_per_worker)
            + f" MiB; peak PSS (shared pages counted once) {memory.peak_pss_total / 2**20:.0f} MiB")
    finally:
        stop_workers(workers)
    return {"workers": n_workers, "concurrency": concurrency, "collection_id": collection.id, "phases": results,
            "peak_rss_total": memory.peak_total, "peak_rss_per_worker": memory.peak_per_worker,
            "peak_pss_total": memory.peak_pss_total}


def stored_chunk_texts(collection_id: int, prefix: str = "scifact-") -> list[str]:
    """The chunk texts the pipeline stored for this collection's text (or pdf) phase."""
    from apps.corpus.models import Chunk

    return list(Chunk.objects.filter(collection_id=collection_id, document__title__startswith=prefix)
                .order_by("document_id", "ordinal").values_list("text", flat=True))


def parsed_chunk_texts(files: list[CorpusFile], phase: str = "text") -> list[str]:
    """A phase's chunks as the pipeline will cut them (same parser and settings), parsed
    here so the raw encode can also be measured before the workers run."""
    from django.conf import settings

    from apps.ingestion import parsing

    texts = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            if f.phase != phase:
                continue
            path = Path(tmp) / f.name
            path.write_bytes(f.data)
            texts += [d.text for d in parsing.parse_and_chunk(
                path, f.name, max_characters=settings.CHUNK_MAX_CHARACTERS,
                new_after_n_chars=settings.CHUNK_NEW_AFTER_CHARACTERS, overlap=settings.CHUNK_OVERLAP_CHARACTERS)]
    return texts


def raw_encode_rate(texts: list[str], label: str) -> float:
    """Encode ``texts`` in-process with the product's embedding function and batch size."""
    from django.conf import settings

    from apps.ingestion.embedding import embed_passages

    embed_passages(texts[:32])  # load the model outside the timing
    cpu = time.process_time()
    started = time.monotonic()
    embed_passages(texts)
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu
    rate = len(texts) / seconds
    say(f"raw encode {label} (apps.ingestion.embedding.embed_passages, batch {settings.EMBEDDING_BATCH_SIZE}): "
        f"{len(texts)} chunks at {rate:.2f} chunks/s, {seconds:.1f} s, {cpu:.1f} CPU seconds "
        f"(load average {os.getloadavg()[0]:.1f})")
    return rate


def setup_environment(base: Path, broker: str | None):
    """Fresh embedded PostgreSQL + data dir under base; broker as given or embedded Redis."""
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    os.environ["RAG_DATA_DIR"] = str(base / "data")
    os.environ["DO_NOT_TRACK"] = "true"
    pg = start_database(base)
    redis = None
    if broker is None:
        from rag_platform.embedded import start_redis

        redis = start_redis(base / "redis", persistent=False)
        broker = redis.url
    os.environ["DATABASE_URL"] = pg.url
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")
    from rag_platform.embedded import child_environment

    started = time.monotonic()
    # Migrations run as the owner (README "Database roles"); the workers and this process as
    # the application role, as in production.
    os.environ["RAG_DATABASE_OWNER_URL"] = pg.owner_url
    migrate(child_environment(DATABASE_URL=pg.owner_url, RAG_DATABASE_OWNER_URL=pg.owner_url, CELERY_BROKER_URL=broker,
                              RAG_DATA_DIR=os.environ["RAG_DATA_DIR"]))
    say(f"embedded PostgreSQL at {pg.socket_dir}, migrated in {time.monotonic() - started:.0f} s; broker {broker}")
    import django

    django.setup()
    return pg, redis, broker


def machine_line() -> str:
    import psutil

    return (f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"load average at start {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--docs", type=int, default=500, help=".txt/.md files of SciFact abstracts")
    parser.add_argument("--abstracts-per-doc", type=int, default=1,
                        help="abstracts in each text file (1: one-paragraph files; 10: documents of ~25 chunks)")
    parser.add_argument("--pdfs", type=int, default=8, help="text PDFs")
    parser.add_argument("--pdf-pages", type=int, default=5)
    parser.add_argument("--scans", type=int, default=6, help="scanned one-page PDFs (OCR)")
    parser.add_argument("--workers", default="1,2", help="worker process counts to compare")
    from rag_platform.process.runtime import pool_processes

    parser.add_argument("--concurrency", default=str(pool_processes()),
                        help="pool processes per worker (default: the stack's, RAG_WORKERS); with --alternate, "
                             "a list such as 1,2 compares them round by round")
    parser.add_argument("--broker", help="Celery broker URL (default: an embedded Redis)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, logs)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--one-page", type=int, default=0, metavar="N",
                        help="only this: N one-page text PDFs uploaded one at a time to an idle worker, each "
                             "timed from upload to searchable (the batch wait must not hold a lone upload back)")
    parser.add_argument("--alternate-phase", default="text", choices=("text", "pdf"),
                        help="the phase --alternate runs (pdf: the text PDFs)")
    parser.add_argument("--alternate", type=int, default=0, metavar="N",
                        help="only the text phase with 1 worker, N times, each run between two raw encodes "
                             "of the same chunks (raw, pipeline, raw, pipeline, ..., raw): the fairest ratio "
                             "on a machine whose load drifts")
    args = parser.parse_args()
    args.concurrencies = [int(x) for x in args.concurrency.split(",")]
    args.concurrency = args.concurrencies[0]

    if (ROOT / "var").exists():
        (ROOT / "var" / "bench").mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=ROOT / "var" / "bench" if (ROOT / "var").exists() else None))
    say(f"machine: {machine_line()}; work dir {base}")
    files = build_corpus(args.dataset, args.docs, args.pdfs, args.pdf_pages, args.scans, args.abstracts_per_doc)
    say("corpus: " + ", ".join(f"{p} {sum(1 for f in files if f.phase == p)} files / {sum(f.pages for f in files if f.phase == p)} pages" for p in PHASES))
    pg = redis = None
    runs = []
    try:
        pg, redis, broker = setup_environment(base, args.broker)
        if args.one_page:
            one_page_latency(args, pg.url, broker, base)
            return
        if args.alternate:
            alternate(args, files, pg.url, broker, base)
            return
        # The raw encode is measured before and after the pipeline runs (the machine is
        # shared: its load changes), and the pipeline is compared with their mean.
        before = raw_encode_rate(parsed_chunk_texts(files), "before the workers")
        pdf_before_texts = parsed_chunk_texts(files, "pdf")
        pdf_before = raw_encode_rate(pdf_before_texts, "of the text PDFs' chunks, before the workers") \
            if pdf_before_texts else None
        for n, concurrency in configurations(args):
            runs.append(run_configuration(n, files=files, database=pg.url, broker=broker, log_dir=base,
                                          concurrency=concurrency, timeout=args.timeout, tag=f"w{concurrency}x"))
        texts = stored_chunk_texts(runs[0]["collection_id"])
        after = raw_encode_rate(texts, "after the workers (the chunks as stored)")
        raw = (before + after) / 2
        say(f"raw encode, mean of before and after: {raw:.2f} chunks/s")
        n_raw = len(texts)
        pdf_texts = stored_chunk_texts(runs[0]["collection_id"], "report-")
        raw_pdf = None
        if pdf_texts:
            pdf_after = raw_encode_rate(pdf_texts, "of the text PDFs' chunks, after the workers (as stored)")
            raw_pdf = (pdf_before + pdf_after) / 2 if pdf_before else pdf_after
            say(f"raw encode of the text PDFs' chunks, mean of before and after: {raw_pdf:.2f} chunks/s")
        report(runs, raw, n_raw, raw_pdf)
        if args.json:
            args.json.write_text(json.dumps({
                "raw_encode_chunks_per_s": raw, "raw_encode_before": before, "raw_encode_after": after,
                "runs": [{**r, "phases": {k: {**vars(v), "chunks_per_s": v.chunks_per_s, "pages_per_s": v.pages_per_s}
                                          for k, v in r["phases"].items()}} for r in runs],
            }, indent=2, default=str))
    finally:
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def configurations(args) -> list[tuple[int, int]]:
    """(worker processes, pool processes each): one worker with each --concurrency value
    (1,2: one and two pool processes), then more workers with the last of them."""
    workers = [int(x) for x in args.workers.split(",")]
    out = [(1, c) for c in args.concurrencies] if 1 in workers else []
    return out + [(n, args.concurrencies[-1]) for n in workers if n != 1]


def alternate(args, files, database: str, broker: str, base: Path) -> None:
    """raw, pipeline, raw, pipeline, ..., raw: each pipeline run against its neighbours' mean.
    With several --concurrency values, each round runs each of them (raw between all)."""
    import statistics

    phase = args.alternate_phase
    texts = parsed_chunk_texts(files, phase)
    raws = [raw_encode_rate(texts, "round 0")]
    runs = []  # (concurrency, chunks/s, index of the raw before it)
    for i in range(args.alternate):
        for c in args.concurrencies:
            run = run_configuration(1, files=files, database=database, broker=broker, log_dir=base,
                                    concurrency=c, phases=(phase,), timeout=args.timeout, tag=f"alt{i}-")
            runs.append((c, run["phases"][phase].chunks_per_s, len(raws) - 1))
            say(f"  {phase} round {i + 1}, concurrency {c}: {run['phases'][phase].pages_per_s:.2f} pages/s")
            raws.append(raw_encode_rate(texts, f"after round {i + 1}, concurrency {c}"))
    say(f"\n== alternating summary (load average now {os.getloadavg()[0]:.1f})")
    ratios: dict[int, list[float]] = {}
    for c, rate, before in runs:
        neighbours = (raws[before] + raws[before + 1]) / 2
        ratios.setdefault(c, []).append(rate / neighbours)
        say(f"1 worker x {c}: pipeline {rate:.2f} chunks/s, raw encode before/after {raws[before]:.2f}/{raws[before + 1]:.2f} "
            f"-> ratio {ratios[c][-1]:.2f}")
    for c, values in ratios.items():
        say(f"pipeline / raw encode, 1 worker x {c} pool process(es), {len(texts)} chunks: median "
            f"{statistics.median(values):.2f} (rounds: {', '.join(f'{r:.2f}' for r in values)})")
    if args.json:
        args.json.write_text(json.dumps({"raw": raws, "runs": runs, "ratios": ratios}, indent=2))


def one_page_latency(args, database: str, broker: str, base: Path) -> None:
    """Upload -> searchable for a lone one-page PDF, N times, on one warm idle worker."""
    import statistics

    from django.contrib.auth import get_user_model

    from apps.corpus.models import Collection

    user, _ = get_user_model().objects.get_or_create(username="bench-ingest")
    collection = Collection.objects.create(name=f"bench-one-page-{time.time_ns()}", created_by=user)
    collection.grants.create(user=user, level="manage")
    pdfs = [f for f in build_corpus(args.dataset, 0, args.one_page, 1, 0, 1) if f.phase == "pdf"]
    workers = start_workers(1, database=database, broker=broker, log_dir=base, concurrency=args.concurrency, tag="one")
    try:
        warm = [CorpusFile(f"warmup-{i}-{time.time_ns()}.txt", f"Warm-up {i}: the quick brown fox.".encode(), "warm", 1)
                for i in range(args.concurrency * 2)]
        run_phase(collection, user, warm, "warm", args.timeout)
        seconds = []
        for f in pdfs:
            time.sleep(1.0)  # idle between uploads
            seconds.append(run_phase(collection, user, [f], "pdf", args.timeout).seconds)
            say(f"  one-page PDF {len(seconds)}: upload -> searchable {seconds[-1]:.2f} s (load average {os.getloadavg()[0]:.1f})")
    finally:
        stop_workers(workers)
    say(f"one-page upload -> searchable, {len(seconds)} uploads, 1 worker x {args.concurrency}: median "
        f"{statistics.median(seconds):.2f} s, max {max(seconds):.2f} s (load average now {os.getloadavg()[0]:.1f})")


def report(runs, raw: float, n_raw: int, raw_pdf: float | None = None) -> None:
    say(f"\n== summary (load average now {os.getloadavg()[0]:.1f})")
    base = runs[0]
    for r in runs:
        text = r["phases"].get("text")
        line = f"{r['workers']} worker(s) x {r['concurrency']} pool process(es): "
        if text:
            line += (f"text {text.chunks_per_s:.2f} chunks/s = {text.chunks_per_s / raw:.2f} of raw encode ({raw:.2f}/s, "
                     f"{n_raw} chunks); {text.docs_per_s:.2f} docs/s")
            if r is not base and base["phases"].get("text"):
                line += f"; speed-up vs {base['workers']} worker(s) x {base['concurrency']}: {text.chunks_per_s / base['phases']['text'].chunks_per_s:.2f}x"
        for phase in ("pdf", "scan"):
            p = r["phases"].get(phase)
            if p:
                line += f"; {phase} {p.pages_per_s:.2f} pages/s"
                if phase == "pdf" and raw_pdf:
                    line += f" ({p.chunks_per_s:.2f} chunks/s = {p.chunks_per_s / raw_pdf:.2f} of their raw encode, {raw_pdf:.2f}/s)"
        line += f"; peak RSS {r['peak_rss_total'] / 2**20:.0f} MiB (PSS {r['peak_pss_total'] / 2**20:.0f} MiB)"
        say(line)


if __name__ == "__main__":
    main()
