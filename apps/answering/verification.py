"""Is a grounded answer an answer, with the passage's meaning? Only then is it "Verified".

``grounding.check_answer`` says every sentence's figures, names and most words are in the
passage it cites. That lets through answers a reader would call wrong (issue 22): a
negation of the passage dropped ("can treat location as a second factor" from "is not
considered an authentication factor"), a figure taken from elsewhere in the passage, an
answer that repeats the question or one phrase ("X should contact X"). So a draft is
labelled Verified only when, beyond the grounding check, it passes these general rules
(none is about the wording of any document or question set):

* **grounded in what the model was shown**: the evidence windows in the prompt, not the
  whole chunks they came from;
* **polarity both ways**: the window sentence that supports the answer (the one sharing most
  of its words) and the answer both negate or prohibit, or neither does ("will not",
  "does not", "is prohibited", "cannot", "discouraged", "denied");
* **it holds what was asked, and the question does not already hold it**: a figure with a
  unit for a how-much / how-many question, with a unit of time (or a date) for how-long /
  how-soon / by-when; a name, code, address or link for who / which / where / what-form
  questions; for every question at least one word of the passage that the question does not
  contain;
* **not circular**: not a question, and no phrase of two content words said twice;
* **near-extractive** (the small profile): the answer's own words (those not in the
  question) occur, in order, in the one evidence window it was given, at least
  ``EXTRACTIVE_SHARE`` of them. A 135M model's paraphrase is where meaning gets lost; a
  near-copy of the window is checkable, and otherwise the window is quoted.

A draft failing any rule is not shown as the answer: services show the quotation. Pure and
deterministic, well under a millisecond per answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from apps.answering.answerability import wants_figure
from apps.answering.grounding import Grounding, check_answer, dropped_contact, shares_terms
from apps.answering.sentences import split_sentences
from apps.answering.textnorm import content_words, names, quantities

EXTRACTIVE_SHARE = 0.8

# Negation or prohibition: the words that flip what a sentence allows or states.
_NEGATIVE = re.compile(
    r"\b(?:not|no|never|cannot|can't|won't|isn't|aren't|doesn't|don't|didn't|wasn't|weren't|shouldn't|mustn't"
    r"|none|neither|nor|prohibited|forbidden|banned|disallowed|denied|discouraged|refuses?|refused)\b"
    r"|n't\b",
    re.IGNORECASE,
)
_DURATION_QUESTION = re.compile(
    r"\bhow (?:long|soon|often|far ahead|far in advance|far back|early|late)\b|\bby when\b|\bhow much time\b"
    r"|\bwithin how\b|\bwhat (?:date|day|time)\b|\bwhen (?:do|does|should|must|will|can|is|are)\b",
    re.IGNORECASE,
)
_TIME_WORD = re.compile(
    r"\b(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|quarters?|annually|yearly|monthly|weekly|daily"
    r"|am|pm|noon|midnight|monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march"
    r"|april|may|june|july|august|september|october|november|december|birthday|anniversary)\b|\d\s?(?:am|pm)\b",
    re.IGNORECASE,
)
_NAME_QUESTION = re.compile(
    r"^\W*(?:who|whom)\b|\b(?:who|whom) (?:do|does|should|can|is|are|handles|runs|must|will|to)\b|\bwhere\b"
    r"|\bwhich\b"
    r"|\bwhat (?:[\w-]+ ){0,2}(?:form|tool|number|address|e-?mail|name|option|team|office|type|app|system"
    r"|programme|program|website|site|channel|insurer|provider|company|vendor|subject line)\b",
    re.IGNORECASE,
)


def wants_duration(question: str) -> bool:
    return bool(_DURATION_QUESTION.search(question))


def wants_name(question: str) -> bool:
    """Who / which / where / what-form: the answer is named (a person, office, form, address)."""
    return bool(_NAME_QUESTION.search(question))


def negative(text: str) -> bool:
    return bool(_NEGATIVE.search(text))


def supporting_sentence(claim: str, window: str) -> str:
    """The sentence of ``window`` that shares most content words with ``claim``."""
    claimed = set(content_words(claim))
    sentences = split_sentences(window) or [window]
    return max(sentences, key=lambda s: len(claimed & set(content_words(s))))


def polarity_problem(claim: str, window: str) -> str:
    support = supporting_sentence(claim, window)
    if negative(support) and not negative(claim):
        return "the passage says it with a negation or prohibition, and the answer drops it"
    if negative(claim) and not negative(support):
        return "the answer negates what the passage states"
    return ""


def _new_quantities(claim: str, question: str) -> list:
    asked = {q.value for q in quantities(question)}
    return [q for q in quantities(claim) if q.value not in asked]


def _new_names(claim: str, question: str) -> list[str]:
    lowered = question.lower()
    return [n for n in names(claim) if n.lower() not in lowered]


def asked_problem(claim: str, question: str, window: str) -> str:
    """What the question asks for, missing from the answer (or only in the question)."""
    new_words = set(content_words(claim)) - set(content_words(question))
    figures = _new_quantities(claim, question)
    if wants_duration(question):
        if not (figures and _TIME_WORD.search(claim)) and not _TIME_WORD.search(" ".join(new_words)):
            return "the question asks how long or by when, and the answer gives no period or date"
    elif wants_figure(question):
        if not any(q.unit or q.money for q in figures):
            return "the question asks for a figure, and the answer states none with its unit"
    if wants_name(question) and not _new_names(claim, question) and not figures:
        return "the question asks who, which or where, and the answer names nothing the question does not"
    if not new_words and not figures and not _new_names(claim, question):
        return "the answer only restates the question"
    if not (new_words & set(content_words(window))) and not figures:
        return "the answer adds nothing from the passage to what the question says"
    return ""


def circular_problem(claim: str) -> str:
    if claim.rstrip().endswith("?"):
        return "the answer is a question"
    stems = content_words(claim)
    pairs = list(zip(stems, stems[1:], strict=False))
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        if pair in seen and pair[0] != pair[1]:
            return f"the answer repeats “{' '.join(pair)}”: it goes round in a circle"
        seen.add(pair)
    return ""


def _in_order_share(words: list[str], window: list[str]) -> float:
    """The share of ``words`` found as a subsequence of ``window`` (longest common subsequence)."""
    if not words:
        return 1.0
    previous = [0] * (len(window) + 1)
    for w in words:
        current = [0]
        for j, v in enumerate(window, start=1):
            current.append(previous[j - 1] + 1 if w == v else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1] / len(words)


def extractive_problem(claim: str, question: str, window: str) -> str:
    asked = set(content_words(question))
    own = [w for w in content_words(claim) if w not in asked]
    share = _in_order_share(own, content_words(window))
    if share < EXTRACTIVE_SHARE:
        return f"only {share:.0%} of the answer's own words follow the passage in order"
    return ""


def _claim_text(sentence: str) -> str:
    return re.sub(r"\[\d{1,2}\]", " ", sentence).strip()


def verify_draft(draft: str, *, question: str, windows: dict[int, str], quotation: str = "",
                 min_overlap: float, cut_off: bool = False, extractive: bool = False) -> tuple[Grounding, str]:
    """The grounding verdicts of ``draft`` against the ``windows`` the model was shown (source
    number -> text), and the reason it is not an answer ("" when it may be labelled Verified)."""
    grounding = check_answer(draft, passages=windows, question=question, min_overlap=min_overlap, cut_off=cut_off)
    if not grounding.verified:
        return grounding, grounding.reason
    whole = " ".join(_claim_text(v.sentence) for v in grounding.verdicts)
    shown = "\n".join(windows[n] for n in grounding.cited if n in windows)
    for verdict in grounding.verdicts:
        claim = _claim_text(verdict.sentence)
        window = "\n".join(windows[n] for n in verdict.cites)
        problem = circular_problem(claim) or polarity_problem(claim, window)
        if extractive and not problem:
            problem = extractive_problem(claim, question, window)
        if problem:
            return grounding, problem
    problem = asked_problem(whole, question, shown)
    if not problem and not shares_terms(whole, question) and not quantities(whole):
        problem = "the answer is about something the question does not ask"
    if not problem and quotation and (dropped := dropped_contact(draft, quotation, question)):
        problem = f"the answer leaves out “{dropped}”, which the passage gives"
    return grounding, problem


def shown_windows(evidence: Sequence) -> dict[int, str]:
    """Source number -> the text of it the model was shown (its evidence windows, joined)."""
    windows: dict[int, list[str]] = {}
    for e in evidence:
        windows.setdefault(e.number, []).append(e.sentence)
    return {n: "\n".join(texts) for n, texts in windows.items()}

