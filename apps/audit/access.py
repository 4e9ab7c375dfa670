"""Which collections a reviewer may read, for the need-to-know masking of passages.

The audit app is below the corpus app (it imports no other app), yet the rule of who reads a
collection is the corpus app's (apps.corpus.selectors.collections_readable_by). So the corpus
app hands the rule down at start-up (``CorpusConfig.ready`` calls ``register_readable_collections``)
and the audit views ask through ``readable_collection_ids``. Nothing registered: nobody reads
anything, so every passage stays masked (fails closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_rule: Callable[[Any], Iterable[int]] | None = None


def register_readable_collections(rule: Callable[[Any], Iterable[int]]) -> None:
    """``rule(user)`` -> the ids of the collections ``user`` may read now."""
    global _rule
    _rule = rule


def readable_collection_ids(user) -> set[int]:
    return set() if _rule is None else {int(i) for i in _rule(user)}
