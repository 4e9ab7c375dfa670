"""Text as the checks see it: normalised, split into words, numbers and names.

Every check on documents, questions and answers runs on ``clean_text`` first: NFKC folds
compatibility forms (full-width digits, ligatures, many homoglyph presentation forms) and
zero-width and bidirectional control characters are removed, so "ig\u200bnore" or a
right-to-left override cannot slip past a pattern, and "３０ days" is "30 days".

``quantities`` reads numbers the way a reader does ("thirty days" = "30 days", "1,000" =
"1000", "$10,000" = an amount of 10000), each with the unit word that follows it; the
grounding check compares them by value and unit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0]+")


def clean_text(text: str) -> str:
    """NFKC, without zero-width or bidirectional controls, runs of spaces made one."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text)


STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't
    down during each either etc few for from further get gets got had hadn't has hasn't have haven't having he
    her here hers herself him himself his how however i i'm if in into is isn't it it's its itself just let's
    may me might more most must mustn't my myself need needs no nor not now of off on once one's only or other
    our ours ourselves out over own per please same shall she should shouldn't so some such than that that's
    the their theirs them themselves then there there's these they this those through to too under until up
    upon us use used using very via was wasn't we were weren't what what's when where which while who whom
    whose why will with within without won't would wouldn't yes you your yours yourself yourselves
    i've i'd you're you've we're we've they're they've ask asked tell know want wondering like
    much many long often take takes""".split()
)

_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*[A-Za-z]|[A-Za-z]")


def stem(word: str) -> str:
    """A light, deterministic English stem: enough to match "approvals" with "approval"."""
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, keep in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def content_words(text: str) -> list[str]:
    """Stems of the words that carry meaning (no stopwords, no numbers, spelled or not)."""
    return [stem(w) for w in words(text)
            if len(w) > 1 and (lowered := w.lower().replace("’", "'")) not in STOPWORDS and lowered not in NUMBER_WORDS]


# --- numbers -----------------------------------------------------------------------------
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
NUMBER_WORDS = frozenset([*_UNITS, *_TENS, *_SCALES])
_NUMBER_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
_NUMBER = re.compile(
    r"(?P<money>[$€£])?\s?(?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<scale>hundred|thousand|million|billion|k)\b)?"
    rf"|(?P<spelled>\b(?:{_NUMBER_WORD})(?:[\s-]+(?:and\s+)?(?:{_NUMBER_WORD}))*\b)",
    re.IGNORECASE,
)
_UNIT_AFTER = re.compile(r"\s*(?:-\s*)?(%|[A-Za-z]+)")
# Units whose mismatch changes the meaning of a figure ("13 days" is not "13 hours").
MEASURE_UNITS = frozenset(
    """second minute hour day week month year business workday percent % dollar cent mile time
    employee people person page character pay period""".split()
)
_UNIT_ALIASES = {"hr": "hour", "hrs": "hour", "yr": "year", "yrs": "year", "mins": "minute", "min": "minute",
                 "pct": "percent", "%": "percent", "days": "day", "business": "business"}


def _spelled_value(text: str) -> float | None:
    total, current, seen = 0, 0, False
    for token in re.split(r"[\s-]+", text.lower()):
        if token == "and" or not token:
            continue
        if token in _UNITS:
            current += _UNITS[token]
        elif token in _TENS:
            current += _TENS[token]
        elif token == "hundred":
            current = max(current, 1) * 100
        elif token in _SCALES:
            total += max(current, 1) * _SCALES[token]
            current = 0
        else:
            return None
        seen = True
    return float(total + current) if seen else None


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str  # the normalised unit word after the number ("day", "percent"), or ""
    money: bool
    text: str  # as written

    def label(self) -> str:
        return self.text


def _unit(following: str) -> str:
    match = _UNIT_AFTER.match(following)
    if not match:
        return ""
    word = match.group(1).lower()
    if word in STOPWORDS:
        return ""
    word = _UNIT_ALIASES.get(word, word)
    return stem(word) if word != "%" else "percent"


def quantities(text: str) -> list[Quantity]:
    """Every number in ``text`` with its value, unit and whether it is an amount of money."""
    found: list[Quantity] = []
    for match in _NUMBER.finditer(text):
        if match.group("spelled"):
            value = _spelled_value(match.group("spelled"))
            if value is None:
                continue
        else:
            value = float(match.group("digits").replace(",", ""))
            scale = (match.group("scale") or "").lower()
            if scale:
                value *= 1000 if scale == "k" else _SCALES[scale]
        found.append(Quantity(value, _unit(text[match.end():match.end() + 24]), bool(match.group("money")),
                              match.group(0).strip()))
    return found


def is_year(quantity: Quantity) -> bool:
    """A bare four-digit number between 1900 and 2100 ("the 2026 guide"): a date, not an amount."""
    return (not quantity.money and quantity.unit not in MEASURE_UNITS and quantity.value.is_integer()
            and 1900 <= quantity.value <= 2100 and len(quantity.text) == 4)


def measures(text: str) -> list[Quantity]:
    """The quantities of ``text`` that are amounts, counts or periods (not years)."""
    return [q for q in quantities(text) if not is_year(q)]


def quantity_supported(quantity: Quantity, passage: list[Quantity], passage_text: str) -> bool:
    """The passage states the same value, with the same unit when the unit matters."""
    for other in passage:
        if abs(other.value - quantity.value) > 1e-9:
            continue
        if quantity.money and not other.money and "$" not in passage_text and "dollar" not in passage_text.lower():
            continue
        if quantity.unit in MEASURE_UNITS and other.unit != quantity.unit:
            # "13 days (104 hours)": the unit may sit a few words away; accept it only if the
            # passage uses that unit word right next to the same figure somewhere.
            if not re.search(rf"{re.escape(other.text)}\W{{0,3}}{re.escape(quantity.unit)}", passage_text,
                             re.IGNORECASE):
                continue
        return True
    return False


# --- names -------------------------------------------------------------------------------
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)
_TOKEN = re.compile(r"[\w@.+\-/'’]+")
NAME_EXCEPTIONS = frozenset({"i", "i'm", "i've", "ok", "am", "pm"})


def names(text: str) -> list[str]:
    """Proper names, codes, e-mail addresses and links: words a grounded answer must copy.

    A capitalised word counts unless it opens the sentence (where any word is capitalised);
    an all-capitals word or a word mixing letters and digits (SF-50) counts anywhere."""
    found: list[str] = [m.group(0).rstrip(".") for m in _EMAIL.finditer(text)]
    found += [m.group(0).rstrip(".,;)") for m in _URL.finditer(text)]
    stripped = _URL.sub(" ", _EMAIL.sub(" ", text))
    sentence_start = True
    for raw in _TOKEN.findall(stripped):
        token = raw.strip(".,;:!?()[]'\"’-/")
        if not token or token.isdigit():
            sentence_start = raw.endswith((".", "!", "?", ":")) or sentence_start and not token
            continue
        lowered = token.lower()
        is_code = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
        is_caps = len(token) >= 2 and token.isupper() and token.isalpha()
        is_capitalised = token[0].isupper() and not sentence_start
        if (is_code or is_caps or is_capitalised) and lowered not in NAME_EXCEPTIONS:
            if not (is_capitalised and lowered in STOPWORDS and not is_caps):
                found.append(token)
        sentence_start = raw.endswith((".", "!", "?", ":"))
    return found


NEGATIONS = re.compile(r"\b(?:not|no|never|cannot|can't|won't|isn't|aren't|doesn't|don't|didn't|none|neither|nor"
                       r"|without|unless|except|prohibited|forbidden)\b", re.IGNORECASE)
