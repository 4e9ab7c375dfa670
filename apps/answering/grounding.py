"""Is each sentence of an answer supported by the passage it cites? Whatever the model.

A sentence is supported when it cites at least one source the model was shown, and the
cited passages together contain every figure it states (by value and unit: "thirty days" =
"30 days", "1,000" = "1000"), every proper name, code, e-mail address and link, any negation
it makes, and enough of its other words (``min_overlap``, calibrated on the policy-qa dev
set: docs/benchmarks.md). Words of the question count as supported: restating what was
asked asserts nothing. An answer is verified when it has at least one sentence and every
sentence is supported; anything else is not shown as the answer (services decide what is).

Deterministic and pure, so it costs well under a millisecond per sentence, and every
verdict goes into the question's audit event with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from apps.answering.textnorm import (
    NEGATIONS,
    clean_text,
    content_words,
    names,
    quantities,
    quantity_supported,
    stem,
)

_CITATION = re.compile(r"\[(\d{1,2})\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_LEADING_CITATIONS = re.compile(r"^(?:\s*\[\d{1,2}\]\s*[.,;]?)+")


@dataclass(frozen=True)
class SentenceVerdict:
    sentence: str
    cites: tuple[int, ...]
    supported: bool
    reason: str = ""  # why not, in words an auditor reads

    def as_audit(self) -> dict:
        return {"sentence": self.sentence, "cites": list(self.cites), "supported": self.supported,
                "reason": self.reason}


@dataclass(frozen=True)
class Grounding:
    verdicts: list[SentenceVerdict] = field(default_factory=list)
    problem: str = ""  # a reason that concerns the whole answer (empty, cut off)

    @property
    def verified(self) -> bool:
        return not self.problem and bool(self.verdicts) and all(v.supported for v in self.verdicts)

    @property
    def reason(self) -> str:
        if self.problem:
            return self.problem
        failed = [v for v in self.verdicts if not v.supported]
        return failed[0].reason if failed else ""

    @property
    def cited(self) -> list[int]:
        return sorted({n for v in self.verdicts for n in v.cites})

    def as_audit(self) -> dict:
        return {"verified": self.verified, "reason": self.reason,
                "sentences": [v.as_audit() for v in self.verdicts]}


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences, each keeping the citations written right after it."""
    parts = [p.strip() for p in _SENTENCE_END.split(clean_text(answer).replace("\n", " ")) if p.strip()]
    sentences: list[str] = []
    for part in parts:
        leading = _LEADING_CITATIONS.match(part)
        if sentences and leading:  # "... characters. [1] It rotates ..." : [1] ends the first
            sentences[-1] = f"{sentences[-1]} {leading.group(0).strip()}"
            part = part[leading.end():].strip()
        if part:
            sentences.append(part)
    return sentences


def _claim(sentence: str) -> str:
    return _CITATION.sub(" ", sentence).strip()


def check_sentence(sentence: str, *, passages: Mapping[int, str], question: str, min_overlap: float) -> SentenceVerdict:
    cites = tuple(dict.fromkeys(int(n) for n in _CITATION.findall(sentence)))
    if not cites and len(passages) == 1:
        # The model was shown one source: an uncited sentence can only rest on it, and is
        # checked against it like a cited one (small models often omit the [n]).
        cites = tuple(passages)
    claim = _claim(sentence)
    if not re.search(r"[A-Za-z0-9]", claim):
        return SentenceVerdict(sentence, cites, False, "says nothing but a citation")
    if not cites:
        return SentenceVerdict(sentence, cites, False, "cites no source")
    unknown = [n for n in cites if n not in passages]
    if unknown:
        return SentenceVerdict(sentence, cites, False, f"cites a source it was not shown: [{unknown[0]}]")
    passage = clean_text("\n".join(passages[n] for n in cites))
    where = "".join(f"[{n}]" for n in cites)
    passage_quantities = quantities(passage)
    for quantity in quantities(claim):
        if not quantity_supported(quantity, passage_quantities, passage):
            return SentenceVerdict(sentence, cites, False, f"the figure “{quantity.text}” is not in {where}")
    lowered_passage, lowered_question = passage.lower(), clean_text(question).lower()
    for name in names(claim):
        if name.lower() not in lowered_passage and name.lower() not in lowered_question:
            return SentenceVerdict(sentence, cites, False, f"the name “{name}” is not in {where}")
    if not negated_terms(claim) <= negated_terms(passage):
        return SentenceVerdict(sentence, cites, False, f"it negates what {where} does not")
    claimed = set(content_words(claim))
    if not claimed and not quantities(claim) and not names(claim):
        return SentenceVerdict(sentence, cites, False, f"it states nothing that {where} says")
    if claimed:
        supported = set(content_words(passage)) | set(content_words(question))
        share = len(claimed & supported) / len(claimed)
        if share < min_overlap:
            missing = sorted(claimed - supported)[:3]
            return SentenceVerdict(sentence, cites, False,
                                   f"only {share:.0%} of its words are in {where} (not: {', '.join(missing)})")
    return SentenceVerdict(sentence, cites, True)


def check_answer(answer: str, *, passages: Mapping[int, str], question: str, min_overlap: float,
                 cut_off: bool = False) -> Grounding:
    """Verdicts for every sentence of ``answer`` against ``passages`` (source number -> text
    of the passage shown to the model)."""
    if cut_off:
        return Grounding([], "the model's reply was cut off at its token limit")
    sentences = answer_sentences(answer)
    if not sentences:
        return Grounding([], "the model's reply was empty")
    return Grounding([check_sentence(s, passages=passages, question=question, min_overlap=min_overlap)
                      for s in sentences])


def negated_terms(text: str) -> set[str]:
    """Stems of the content words that follow a negation within three words ("not rotated")."""
    found: set[str] = set()
    for match in NEGATIONS.finditer(text):
        following = content_words(" ".join(text[match.end():].split()[:3]))
        found.update(following[:1] if following else [])
    return found


def states_a_figure(text: str) -> bool:
    return bool(quantities(_claim(text)))


def shares_terms(text: str, question: str) -> float:
    """The share of the question's content words that ``text`` contains."""
    asked = set(content_words(question))
    if not asked:
        return 0.0
    return len(asked & {stem(w) for w in content_words(text)}) / len(asked)


_ASKS_WHERE = re.compile(r"\b(?:where|e-?mail|contact|address|send|submit|who do i)\b", re.IGNORECASE)
_CONTACT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\bhttps?://\S+|\+?\d[\d ()-]{6,}\d")


def dropped_contact(answer: str, quotation: str, question: str) -> str:
    """For a question asking where or whom to contact: an address the quotation gives and
    the answer leaves out (a grounded answer that omits it does not answer), or ""."""
    if not _ASKS_WHERE.search(question):
        return ""
    for contact in _CONTACT.findall(quotation):
        if contact.rstrip(".") not in answer:
            return contact.rstrip(".")
    return ""
