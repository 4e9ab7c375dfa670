"""Personal-data detection: quality on the labelled set, cost per question, cost at ingest.

1. Precision and recall per type on tests/data/pii_labelled.jsonl (clinical notes, bank
   letters, HR and legal sentences, negatives included). A finding is correct when it has
   the gold type and overlaps a gold span of that type.
2. Extra latency per question: the detector on typical questions, warm (median and p95).
3. Ingest cost, in-process: the same files parsed (apps.ingestion.parsing, no sandbox, no
   database), screened, and embedded (the product's embedding backend); chunks/s with
   detection off and on, without and with the embedding. Not the queue path of
   ``make bench-ingest`` (workers, database, batches), which would take far longer.

    .venv/bin/python bench/pii.py [--docs 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
LABELLED = ROOT / "tests" / "data" / "pii_labelled.jsonl"

QUESTIONS = [
    "How many days of annual leave can I carry over into next year?",
    "What is the approval limit for a payment above 10,000 euros?",
    "Can Margaret Okafor's referral be seen by the respiratory clinic before June?",
    "Who approves access badges for contractors visiting the data centre?",
    "My colleague John Smith left; how long do we keep his HR file?",
    "What do I do if I e-mailed a client list to jane.doe@gmail.com by mistake?",
    "Is the IBAN GB82 WEST 1234 5698 7654 32 on the approved supplier list?",
    "How quickly must a personal data breach be reported to the regulator?",
]


def load_labelled(path: Path = LABELLED) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per type: gold, predicted, true positives (overlap, same type), precision, recall."""
    from apps.privacy.detection import find
    from apps.privacy.kinds import ENTITY_TYPES

    stats = {t: {"gold": 0, "predicted": 0, "tp_pred": 0, "tp_gold": 0} for t in ENTITY_TYPES}
    misses: list[str] = []
    for row in rows:
        text, gold = row["text"], [tuple(s) for s in row["spans"]]
        found = find(text)
        for start, end, kind in gold:
            stats[kind]["gold"] += 1
            if any(f.entity_type == kind and f.start < end and start < f.end for f in found):
                stats[kind]["tp_gold"] += 1
            else:
                misses.append(f"missed {kind} {text[start:end]!r}")
        for f in found:
            stats[f.entity_type]["predicted"] += 1
            if any(kind == f.entity_type and f.start < end and start < f.end for start, end, kind in gold):
                stats[f.entity_type]["tp_pred"] += 1
            else:
                misses.append(f"false {f.entity_type} {text[f.start:f.end]!r}")
    table = {}
    for kind, s in stats.items():
        table[kind] = {
            "gold": s["gold"], "predicted": s["predicted"],
            "precision": s["tp_pred"] / s["predicted"] if s["predicted"] else 1.0,
            "recall": s["tp_gold"] / s["gold"] if s["gold"] else 1.0,
        }
    table["_errors"] = misses  # type: ignore[assignment]
    return table


def question_latency(repeats: int = 25) -> dict[str, float]:
    from apps.privacy.detection import count

    for q in QUESTIONS:  # warm
        count(q)
    times = []
    for _ in range(repeats):
        for q in QUESTIONS:
            started = time.perf_counter()
            count(q)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"questions": len(times), "median_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times)) - 1]}


def export_masking(rows: list[dict], events: int = 20) -> dict[str, float]:
    """mask_content on question payloads like the trail's (question, answer, 4 passages, 5
    evidence sentences), the cache emptied before each: the cost per event of a masked export."""
    from apps.privacy.masking import clear_cache, mask_content

    texts = [r["text"] for r in rows]
    times = []
    for i in range(events):
        passages = [" ".join(texts[(i * 4 + k + j) % len(texts)] for j in range(6)) for k in range(4)]
        payload = {"question": QUESTIONS[i % len(QUESTIONS)], "answer": texts[i % len(texts)],
                   "retrieved": [{"n": k + 1, "text": p} for k, p in enumerate(passages)],
                   "evidence": [{"n": 1, "sentence": texts[(i + j) % len(texts)]} for j in range(5)]}
        clear_cache()
        started = time.perf_counter()
        mask_content(payload)
        times.append((time.perf_counter() - started) * 1000)
    return {"events": events, "median_ms": statistics.median(times), "max_ms": max(times),
            "passage_characters": statistics.mean(len(p) for p in passages)}


def ingest_cost(docs: int) -> dict[str, float]:
    """Parse the files once (timed), then detect on every chunk (timed): the same chunks."""
    import dataclasses

    import ingest

    from apps.ingestion import parsing
    from apps.privacy.detection import find, find_many

    parsing.warm_up()
    find("warm up Jane Smith jane@example.com")
    files = ingest.build_corpus(ingest.DATASET, docs, 0, 5, 0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for f in files:
            path = Path(tmp) / f.name
            path.write_bytes(f.data)
            paths.append(path)
        paths += sorted(p for p in (ROOT / "sample_corpus").iterdir() if p.suffix in parsing.SUPPORTED_EXTENSIONS)
        started = time.perf_counter()
        drafts = []
        for path in paths:
            drafts += [dataclasses.asdict(d) for d in parsing.parse_and_chunk(path, path.name)]
        parse_seconds = time.perf_counter() - started
    started = time.perf_counter()
    find_many([d["text"] for d in drafts])  # as the parse step screens a document's chunks
    detect_seconds = time.perf_counter() - started
    import django

    django.setup()
    from apps.ingestion.embedding import embed_passages

    embed_passages(["warm up"])
    started = time.perf_counter()
    embed_passages([d["text"] for d in drafts])
    embed_seconds = time.perf_counter() - started
    n = len(drafts)
    return {"files": len(paths), "chunks": n, "parse_seconds": parse_seconds, "detect_seconds": detect_seconds,
            "embed_seconds": embed_seconds,
            "chunks_per_s_parse": n / parse_seconds, "chunks_per_s_parse_and_detect": n / (parse_seconds + detect_seconds),
            "chunks_per_s_parse_embed": n / (parse_seconds + embed_seconds),
            "chunks_per_s_parse_detect_embed": n / (parse_seconds + detect_seconds + embed_seconds),
            "detect_ms_per_chunk": 1000 * detect_seconds / max(1, n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200, help="SciFact abstracts for the ingest cost (0: skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")
    started = time.perf_counter()
    from apps.privacy.detection import analyzer

    analyzer()
    load_seconds = time.perf_counter() - started
    table = evaluate(load_labelled())
    errors = table.pop("_errors")
    result = {"load_seconds": load_seconds, "labelled": table, "question": question_latency(),
              "export_masking": export_masking(load_labelled()),
              "ingest": ingest_cost(args.docs) if args.docs else None, "load_average": os.getloadavg()}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"detector loaded in {load_seconds:.2f} s; load average {result['load_average']}")
    print(f"{'type':<15} {'gold':>5} {'found':>6} {'precision':>10} {'recall':>7}")
    for kind, row in table.items():
        print(f"{kind:<15} {row['gold']:>5} {row['predicted']:>6} {row['precision']:>10.2f} {row['recall']:>7.2f}")
    for line in errors:
        print("  " + line)
    q = result["question"]
    print(f"question: median {q['median_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms over {q['questions']} detections")
    e = result["export_masking"]
    print(f"masking a question event (4 passages of ~{e['passage_characters']:.0f} characters): "
          f"median {e['median_ms']:.0f} ms, max {e['max_ms']:.0f} ms over {e['events']} events")
    if result["ingest"]:
        i = result["ingest"]
        print(f"ingest: {i['files']} files, {i['chunks']} chunks; parse {i['parse_seconds']:.1f} s "
              f"({i['chunks_per_s_parse']:.1f} chunks/s), + detection {i['detect_seconds']:.1f} s "
              f"({i['chunks_per_s_parse_and_detect']:.1f} chunks/s, {i['detect_ms_per_chunk']:.1f} ms per chunk)")
        print(f"with the embedding ({i['embed_seconds']:.1f} s): detection off {i['chunks_per_s_parse_embed']:.1f} "
              f"chunks/s, on {i['chunks_per_s_parse_detect_embed']:.1f} chunks/s (one process, no database)")


if __name__ == "__main__":
    main()
