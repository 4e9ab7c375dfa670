"""What sealing the audit content costs per question (issue 17).

Starts a fresh embedded PostgreSQL (as bench/audit.py does) and, as the application role,
appends a question event shaped like a real one (question, search query, 4 passages of
~1,000 characters, 5 evidence sentences, the prompt evidence, answer, draft, quotation, 3
grounding verdicts) ``--rounds`` times:

* sealed: ``question.asked``, the path every question takes (data keys looked up, HKDF for
  the combined fields, AES-GCM per field, a larger JSON to hash and store);
* plain: the same payload under another event type, which is not sealed: the baseline;
* read: ``event_content`` of one such event (the detail page) and of 50 (a list page).

    .venv/bin/python bench/audit_crypto.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.audit import setup  # noqa: E402

PASSAGE = ("Payments above 10,000 EUR require two approvals from the finance team, recorded in the payments "
           "register before the transfer is released. ") * 7


def payload(documents: list[int], i: int) -> dict:
    return {
        "question": f"How many approvals does a payment above 10,000 EUR need ({i})?",
        "search_query": f"How many approvals does a payment above 10,000 EUR need ({i})?",
        "collections_searched": [1], "model": "smollm2-135m-instruct", "prompt_version": "v", "streamed": True,
        "retrieved": [{"n": n, "chunk_id": n, "document_id": d, "document_sha256": "a" * 64, "page": 1, "score": 0.5,
                       "cited": n == 1, "text": PASSAGE} for n, d in enumerate(documents, start=1)],
        "evidence": [{"n": 1 + k % len(documents), "sentence": PASSAGE[:120], "score": 0.8} for k in range(5)],
        "prompt_evidence": [{"n": 1, "sentence": PASSAGE[:120]}, {"n": 2, "sentence": PASSAGE[:120]}],
        "answerability": {"answerable": True, "reason": ""},
        "answer": "A payment above 10,000 EUR needs two approvals from the finance team [1].",
        "draft": "A payment above 10,000 EUR needs two approvals from the finance team [1].",
        "quotation": PASSAGE[:200], "reason": "",
        "grounding": {"verified": True, "reason": "", "sentences": [
            {"sentence": "A payment above 10,000 EUR needs two approvals [1].", "cites": [1], "supported": True,
             "reason": ""} for _ in range(3)]},
    }


def timed(rounds: int, run) -> list[float]:
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def describe(name: str, times: list[float]) -> None:
    times = sorted(times)
    print(f"{name:<44} median {statistics.median(times):6.2f} ms  p95 {times[int(len(times) * 0.95) - 1]:6.2f} ms  "
          f"mean {statistics.fmean(times):6.2f} ms", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rag-bench-audit-crypto-"))
    server = setup(root)
    try:
        from django.contrib.auth import get_user_model

        from apps.audit.models import AuditEvent
        from apps.audit.selectors import event_content, events_content
        from apps.audit.services import audit_record
        from apps.corpus.models import Collection, Document

        user = get_user_model().objects.create(username="bench")
        collection = Collection.objects.create(name="bench")
        documents = [Document.objects.create(collection=collection, title=f"d{n}.md", sha256=f"{n:064d}", size_bytes=1).id
                     for n in range(4)]
        for warm in ("question.asked", "settings.changed"):
            audit_record(event_type=warm, outcome="answered", actor=user, payload=payload(documents, 0))
        plain = timed(args.rounds, lambda i: audit_record(event_type="settings.changed", outcome="answered", actor=user,
                                                          payload=payload(documents, i)))
        sealed = timed(args.rounds, lambda i: audit_record(event_type="question.asked", outcome="answered", actor=user,
                                                           payload=payload(documents, i)))
        events = list(AuditEvent.objects.filter(event_type="question.asked").order_by("-sequence")[:50])
        one = timed(args.rounds, lambda i: event_content(events[i % len(events)]))
        page = timed(max(args.rounds // 10, 10), lambda i: events_content(events))
        print(f"{args.rounds} rounds, 4 passages of {len(PASSAGE)} characters, load average "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        describe("append, plain (not sealed; baseline)", plain)
        describe("append, sealed (question.asked)", sealed)
        print(f"{'extra per question (median)':<44} {statistics.median(sealed) - statistics.median(plain):6.2f} ms")
        describe("read one event (event_content)", one)
        describe("read 50 events (events_content, a list page)", page)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
