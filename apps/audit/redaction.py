"""Credentials never enter the trail: URLs are redacted before an event is written.

``redact_url`` replaces the password of ``scheme://user:password@host`` (and a bare
``token@host``) and the values of secret-looking query parameters with ``***``.
``audit_record_many`` applies ``redact_payload`` to every payload, so an endpoint URL
recorded anywhere (LLM_BASE_URL in every question event) carries no secret.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMETERS = re.compile(r"(pass(word)?|secret|token|key|auth|credential|signature|sig)", re.IGNORECASE)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """The URL without credentials (unchanged if it has none)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0] if ":" in userinfo else "***"
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_PARAMETERS.search(name) for name, _ in pairs):
            query = urlencode([(name, "***" if SECRET_PARAMETERS.search(name) else value) for name, value in pairs],
                              safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_text(text: str) -> str:
    return _URL.sub(lambda m: redact_url(m.group(0)), text) if "://" in text else text


def redact_payload(value: Any) -> Any:
    """Every string in a JSON-like payload with its URLs redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact_payload(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_payload(item) for item in value]
    return value
