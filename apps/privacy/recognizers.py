"""The recognizers the detector runs, built explicitly (not Presidio's default registry, which
loads dozens of country-specific recognizers we do not report and two that reach tldextract).

Offline: Presidio's e-mail recognizer validates a match with ``tldextract.extract``, whose
default extractor fetches the public suffix list from publicsuffix.org on first use (a DNS
lookup and an HTTPS request from a worker). ``OFFLINE_TLD_EXTRACT`` reads the snapshot that
ships inside tldextract instead (no URL, no disk cache), and ``install_offline_tldextract``
also makes it tldextract's module default, so no other caller can reach the network through it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import tldextract
import tldextract.tldextract
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    NhsRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
    UsSsnRecognizer,
)

# The public suffix list bundled with tldextract: never a URL, never a cache directory.
OFFLINE_TLD_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def install_offline_tldextract() -> None:
    """Make the bundled snapshot tldextract's default extractor (``tldextract.extract``)."""
    tldextract.tldextract.TLD_EXTRACTOR = OFFLINE_TLD_EXTRACT


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail pattern, its domain checked against the bundled suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        return OFFLINE_TLD_EXTRACT(pattern_text).fqdn != ""


# Dates as people write them: 12/03/1985, 1985-03-12, 12.03.85, 12 March 1985, March 12, 1985,
# 12th of March 1985.
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
DATE_PATTERNS = [
    Pattern("numeric date", r"\b(?:0?[1-9]|[12]\d|3[01])[/.-](?:0?[1-9]|1[0-2])[/.-](?:19|20)?\d{2}\b", 0.3),
    Pattern("numeric date, month first", r"\b(?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12]\d|3[01])[/.-](?:19|20)?\d{2}\b", 0.3),
    Pattern("ISO date", r"\b(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b", 0.3),
    Pattern("day month year", rf"\b{_DAY}(?: of)? {_MONTH},? (?:19|20)\d{{2}}\b", 0.3),
    Pattern("month day year", rf"\b{_MONTH} {_DAY},? (?:19|20)\d{{2}}\b", 0.3),
]
# What makes a date a birth date: within BIRTH_CONTEXT_BEFORE characters before it, or right after it.
_BIRTH_BEFORE = re.compile(r"\b(?:born|birth|birthday|DOB|D\.O\.B|b\.)\W", re.IGNORECASE)
_BIRTH_AFTER = re.compile(r"^\W{0,3}\(?\s*(?:DOB|D\.O\.B\.?|date of birth|born)\b", re.IGNORECASE)
BIRTH_CONTEXT_BEFORE = 40


class DateOfBirthRecognizer(PatternRecognizer):
    """A date reported as DATE_OF_BIRTH only with birth context: "born on 3 May 1961",
    "DOB: 03/05/1961", "date of birth 1961-05-03", "03/05/1961 (DOB)". Other dates (signed,
    admitted, due) are not personal data by themselves and are left alone."""

    def __init__(self) -> None:
        super().__init__(supported_entity="DATE_OF_BIRTH", patterns=DATE_PATTERNS, context=[],
                         name="DateOfBirthRecognizer", supported_language="en")

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # noqa: D102
        found = sorted(super().analyze(text, entities, nlp_artifacts, regex_flags) or [], key=lambda r: r.start)
        births = []
        previous_end = 0
        for result in found:
            # The context is what precedes this date since the date before it: "DOB 02/11/1987.
            # Next review 12/09/2025" makes the first a birth date, not the second.
            before = text[max(previous_end, result.start - BIRTH_CONTEXT_BEFORE): result.start]
            previous_end = max(previous_end, result.end)
            after = text[result.end: result.end + 20]
            if _BIRTH_BEFORE.search(before + " ") or _BIRTH_AFTER.search(after):
                births.append(RecognizerResult("DATE_OF_BIRTH", result.start, result.end, 0.85,
                                               result.analysis_explanation, result.recognition_metadata))
        return births


# Regions whose national formats the phone recogniser accepts (international "+.." numbers are
# recognised from any region).
PHONE_REGIONS = ("US", "GB", "IE", "DE", "FR", "NL", "BE", "ES", "IT", "CA", "AU", "IN")


@lru_cache(maxsize=1)
def recognizers() -> tuple[EntityRecognizer, ...]:
    install_offline_tldextract()
    return (
        SpacyRecognizer(supported_entities=["PERSON"]),
        OfflineEmailRecognizer(),
        PhoneRecognizer(supported_regions=PHONE_REGIONS),
        IbanRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        NhsRecognizer(),
        DateOfBirthRecognizer(),
    )
