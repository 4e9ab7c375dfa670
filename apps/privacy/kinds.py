"""The personal-data types the platform reports and how their counts read (no Presidio import:
the web pages that show a summary need only this)."""

from __future__ import annotations

# What the platform reports, in the order it is shown.
ENTITY_TYPES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "CREDIT_CARD", "US_SSN", "UK_NHS",
                "DATE_OF_BIRTH")
# How a count reads in a message: (singular, plural).
ENTITY_NAMES = {
    "PERSON": ("name", "names"),
    "EMAIL_ADDRESS": ("e-mail address", "e-mail addresses"),
    "PHONE_NUMBER": ("phone number", "phone numbers"),
    "IBAN_CODE": ("IBAN", "IBANs"),
    "CREDIT_CARD": ("card number", "card numbers"),
    "US_SSN": ("US social security number", "US social security numbers"),
    "UK_NHS": ("NHS number", "NHS numbers"),
    "DATE_OF_BIRTH": ("date of birth", "dates of birth"),
}


def describe(counts: dict[str, int]) -> str:
    """ "3 e-mail addresses, 1 IBAN" (types in ENTITY_TYPES order); "" for none."""
    parts = []
    for entity_type in ENTITY_TYPES:
        n = counts.get(entity_type, 0)
        if n:
            singular, plural = ENTITY_NAMES[entity_type]
            parts.append(f"{n} {singular if n == 1 else plural}")
    return ", ".join(parts)
