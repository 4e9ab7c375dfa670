"""Masking: personal data replaced by typed placeholders (``<PERSON>``, ``<EMAIL_ADDRESS>``)
with Presidio's AnonymizerEngine (string operations only, no network, no keys).

``mask_text`` for one text; ``mask_content`` for an audit event's payload: the content fields
(question, answer, passages, evidence and grounding sentences, drafts, reasons) at any depth,
everything else (ids, hashes, scores, model names) as is. The audit views and exports call
``mask_content`` on whatever content they are about to show (H1's decrypted content included).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.privacy.detection import Finding

# Payload keys whose string values are free text that can carry personal data: content, and
# the names people give things (titles, file names, a search typed into the review list).
CONTENT_KEYS = frozenset({
    "question", "search_query", "answer", "draft", "quotation", "sentence", "text", "error", "reason",
    "evidence_sentence", "title_hint", "file_name", "name", "title", "document_title", "q",
})


@lru_cache(maxsize=1)
def _anonymizer():
    # Imported when first needed: presidio_anonymizer imports presidio_analyzer, hence spaCy.
    from presidio_anonymizer import AnonymizerEngine

    return AnonymizerEngine()


def mask_findings(text: str, findings: list[Finding]) -> str:
    """``text`` with each finding replaced by ``<TYPE>``."""
    if not findings:
        return text
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    results = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in findings]
    return _anonymizer().anonymize(text=text, analyzer_results=results,
                                   operators={"DEFAULT": OperatorConfig("replace")}).text


_cache: dict[str, str] = {}  # text -> masked text; the same passage is shown in many events
CACHE_TEXTS = 4096


def _remember(text: str, masked: str) -> str:
    if len(_cache) >= CACHE_TEXTS:
        _cache.clear()
    _cache[text] = masked
    return masked


def _erased(value: Any) -> bool:
    """A marker that stands where erased content was (apps.audit.content.ErasedText): it is
    the platform's own text, kept as is."""
    return getattr(value, "erased", False) is True


def mask_text(text: str) -> str:
    """``text`` with its personal data replaced by typed placeholders."""
    if _erased(text):
        return text
    if text in _cache:
        return _cache[text]
    from apps.privacy.detection import find  # Presidio's analyzer imports spaCy: only when needed

    return _remember(text, mask_findings(text, find(text)))


def clear_cache() -> None:
    _cache.clear()


def mask_texts(texts: list[str]) -> list[str]:
    """``mask_text`` of each, the texts not masked before screened in one batch."""
    todo = list(dict.fromkeys(t for t in texts if t not in _cache and not _erased(t)))
    if todo:
        from apps.privacy.detection import find_many

        for text, found in zip(todo, find_many(todo)):
            _remember(text, mask_findings(text, found))
    return [mask_text(t) for t in texts]


def mask_content(content: dict[str, Any]) -> dict[str, Any]:
    """A copy of an event payload (or any JSON-like dict) with the content fields masked; the
    texts not masked before are screened in one batch."""
    texts: list[str] = []
    _collect(content, None, texts)
    mask_texts(texts)
    return _mask(content, None)


FILE_NAME_KEYS = frozenset({"file_name"})


def _stem(value: str) -> tuple[str, str]:
    """A file name's stem and suffix: the suffix is screened apart (``name@example.com.txt``
    is no e-mail address to the detector, ``name@example.com`` is)."""
    import posixpath

    stem, suffix = posixpath.splitext(value)
    return (stem, suffix) if stem and len(suffix) <= 8 else (value, "")


def mask_file_name(value: str) -> str:
    if _erased(value):
        return value
    stem, suffix = _stem(value)
    return mask_text(stem) + suffix


def _collect(value: Any, key: str | None, out: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect(v, k, out)
    elif isinstance(value, list):
        for v in value:
            _collect(v, key, out)
    elif isinstance(value, str) and key in CONTENT_KEYS and not _erased(value):
        out.append(_stem(value)[0] if key in FILE_NAME_KEYS else value)


def _mask(value: Any, key: str | None) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if isinstance(value, str) and key in CONTENT_KEYS:
        return mask_file_name(value) if key in FILE_NAME_KEYS else mask_text(value)
    return value
