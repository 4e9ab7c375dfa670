"""Answer quality on a question set over real documents, through the product's own path.

The documents are uploaded and ingested with the ingestion services (the same parsing,
chunking, embedding and storage as any upload), and every question is asked with
``ask_question`` (the service the page, the API and ``manage.py ask`` call) as a staff
user who may read the collection. The dataset is policy-qa-dev's layout: ``docs/`` and
``questions.jsonl`` rows ``{q, expect, doc, evidence, kind}``; scoring as its SOURCE.md
gives it: an answerable question is right when every ``expect`` string is in the shown
answer (case-insensitive), an unanswerable one (``expect == ["__REFUSE__"]``) when the
platform says "not stated" (its explicit signal, ``answer_kind``).

**Fabricated** counts answers shown as verified that state a figure or a name found in
none of their cited passages: the failure a reader in a hospital or a bank cannot see.
"""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.answering.models import AnswerKind
from apps.answering.services import AnswerResult, ask_question
from apps.answering.textnorm import clean_text, names, quantities, quantity_supported
from apps.corpus.models import Collection, Document
from apps.ingestion.services import document_ingest, document_upload

EVALUATION_USER = "answer-evaluation"
REFUSE = "__REFUSE__"


@dataclass(frozen=True)
class Question:
    text: str
    expect: list[str]
    doc: str | None
    evidence: str
    kind: str

    @property
    def answerable(self) -> bool:
        return self.expect != [REFUSE]


@dataclass
class Outcome:
    question: Question
    result: AnswerResult
    seconds: float
    correct: bool = False
    cited_expected_doc: bool = False
    fabricated: str = ""  # the unsupported figure or name, when a verified answer has one
    notes: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.result.answer_kind == AnswerKind.NOT_STATED


def questions_load(path: Path, *, limit: int | None = None) -> list[Question]:
    rows = [json.loads(line) for line in (Path(path) / "questions.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    questions = [Question(r["q"], r["expect"], r["doc"], r["evidence"], r["kind"]) for r in rows]
    if limit:
        # A slice that keeps the set's mix: answerable and unanswerable in proportion.
        answerable = [q for q in questions if q.answerable]
        unanswerable = [q for q in questions if not q.answerable]
        share = max(1, round(limit * len(unanswerable) / max(1, len(questions))))
        questions = answerable[: limit - share] + unanswerable[:share]
    return questions


def evaluation_user(collection: Collection):
    user, created = get_user_model().objects.get_or_create(username=EVALUATION_USER)
    if created:
        user.set_unusable_password()  # asks through the service, never signs in
        user.save()
        user.groups.add(*Group.objects.filter(name="staff"))
    collection.reader_users.add(user)
    return user


def documents_ingest(path: Path, *, collection_name: str, owner, progress: Callable[[str], None]) -> Collection:
    """Upload and ingest every file of ``docs/``; files already indexed are skipped."""
    collection, _ = Collection.objects.get_or_create(name=collection_name, defaults={"created_by": owner})
    done = set(Document.objects.filter(collection=collection, status=Document.Status.INDEXED)
               .values_list("title", flat=True))
    files = sorted(p for p in (Path(path) / "docs").iterdir() if p.is_file())
    for number, file in enumerate(files, start=1):
        if file.name in done:
            continue
        data = file.read_bytes()
        upload = document_upload(collection=collection, uploaded_by=owner, name=file.name,
                                 content=io.BytesIO(data), size=len(data))
        document = document_ingest(document_id=upload.document.id)
        progress(f"  [{number}/{len(files)}] {file.name}: {document.status if document else 'gone'}")
    return collection


def unsupported_fact(result: AnswerResult) -> str:
    """A figure or name in a verified answer that none of its cited passages contains."""
    if result.answer_kind != AnswerKind.VERIFIED:
        return ""
    passages = clean_text("\n".join(c.source.text for c in result.cited))
    answer = clean_text(result.answer)
    found = quantities(passages)
    for quantity in quantities(answer):
        if not quantity_supported(quantity, found, passages):
            return quantity.text
    for name in names(answer):
        if name.lower() not in passages.lower() and name.lower() not in clean_text(result.question).lower():
            return name
    return ""


def score(question: Question, result: AnswerResult, seconds: float) -> Outcome:
    outcome = Outcome(question, result, seconds)
    shown = result.answer.lower()
    if question.answerable:
        outcome.correct = result.answer_kind != AnswerKind.NOT_STATED and all(e.lower() in shown for e in question.expect)
        outcome.cited_expected_doc = any(c.source.document_title == question.doc for c in result.cited)
    else:
        outcome.correct = outcome.refused
    outcome.fabricated = unsupported_fact(result)
    return outcome


def questions_ask(questions: list[Question], *, user, collection: Collection,
                  progress: Callable[[Outcome], None]) -> list[Outcome]:
    outcomes = []
    for question in questions:
        started = time.monotonic()
        result = ask_question(user=user, question=question.text, collection_ids=[collection.id])
        outcome = score(question, result, time.monotonic() - started)
        progress(outcome)
        outcomes.append(outcome)
    return outcomes


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(outcomes: list[Outcome]) -> dict:
    answerable = [o for o in outcomes if o.question.answerable]
    unanswerable = [o for o in outcomes if not o.question.answerable]
    answered = [o for o in answerable if not o.refused]
    seconds = [o.seconds for o in outcomes]
    checks = [o.result.grounding_ms for o in outcomes if o.result.grounding_ms is not None]
    kinds = {kind: sum(1 for o in outcomes if o.result.answer_kind == kind) for kind in AnswerKind.values}
    return {
        "questions": len(outcomes),
        "answerable_correct": sum(o.correct for o in answerable), "answerable": len(answerable),
        "cited_expected_doc": sum(o.cited_expected_doc for o in answered), "answered": len(answered),
        "unanswerable_refused": sum(o.correct for o in unanswerable), "unanswerable": len(unanswerable),
        "answerable_refused": sum(o.refused for o in answerable),
        "fabricated": sum(bool(o.fabricated) for o in outcomes),
        "overall_correct": sum(o.correct for o in outcomes),
        "kinds": kinds,
        "kinds_right": {kind: sum(1 for o in outcomes if o.result.answer_kind == kind and o.correct)
                        for kind in AnswerKind.values},
        "latency_p50_s": statistics.median(seconds) if seconds else 0.0,
        "latency_p95_s": percentile(seconds, 0.95),
        "grounding_p95_ms": percentile(checks, 0.95),
    }


LABELS = {AnswerKind.VERIFIED: "Verified", AnswerKind.QUOTATION: "Quotation", AnswerKind.NOT_STATED: "Not stated"}


def verified_listing(outcomes: list[Outcome]) -> str:
    """Every answer labelled Verified with the facts it was expected to hold, for a person to read:
    the label's precision is only as good as these read."""
    lines = []
    for o in outcomes:
        if o.result.answer_kind != AnswerKind.VERIFIED:
            continue
        verdict = "right" if o.correct else "WRONG"
        lines.append(f"- [{verdict}] {o.question.text}\n    expected {o.question.expect}\n    answer: {o.result.answer}")
    return "\n".join(lines) or "(no answer was labelled Verified)"


def outcome_record(o: Outcome) -> dict:
    """One outcome as a JSON-able row (the --dump file): what was shown, why, and the draft."""
    r = o.result
    return {"q": o.question.text, "expect": o.question.expect, "doc": o.question.doc, "kind": o.question.kind,
            "answer_kind": r.answer_kind, "correct": o.correct, "answer": r.answer, "draft": r.draft,
            "reason": r.reason, "seconds": round(o.seconds, 3), "cited": [c.source.document_title for c in r.cited],
            "shown": [c.source.document_title for c in r.citations]}


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "0/0"


def summary_table(s: dict) -> str:
    rows = [
        ("answerable: answer contains the expected fact", _share(s["answerable_correct"], s["answerable"])),
        ("answered: cites the expected document", _share(s["cited_expected_doc"], s["answered"])),
        ("unanswerable: refused (not stated)", _share(s["unanswerable_refused"], s["unanswerable"])),
        ("answerable: wrongly refused", _share(s["answerable_refused"], s["answerable"])),
        ("fabricated (verified answer with an unsupported figure or name)", str(s["fabricated"])),
        ("overall correct", _share(s["overall_correct"], s["questions"])),
        ("shown as verified / quotation / not stated / no answer",
         " / ".join(str(s["kinds"].get(k, 0)) for k in AnswerKind.values)),
        *[(f"labelled {label}: right", _share(s["kinds_right"].get(kind, 0), s["kinds"].get(kind, 0)))
          for kind, label in LABELS.items()],
        ("latency p50 / p95", f"{s['latency_p50_s']:.2f} s / {s['latency_p95_s']:.2f} s"),
        ("grounding check p95", f"{s['grounding_p95_ms']:.1f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"| {name.ljust(width)} | {value} |" for name, value in rows)
