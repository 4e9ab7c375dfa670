"""Count prompt tokens with the served model's own tokenizer, so a prompt never overflows
the model's context window (vLLM's --max-model-len)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


def tokenizer_path() -> Path:
    if settings.LLM_TOKENIZER_PATH:
        return Path(settings.LLM_TOKENIZER_PATH)
    from rag_platform.llm_model import SERVED_NAME

    import os

    model_dir = os.environ.get("RAG_MODEL_DIR") or settings.LLM_MODEL_DIR  # as the stack does
    return Path(model_dir) / SERVED_NAME / "tokenizer.json"


@lru_cache(maxsize=2)
def _tokenizer(path: str):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception:  # noqa: BLE001 - no local tokenizer (remote vLLM): counted conservatively
        logger.warning("no tokenizer at %s: counting 1 token per 2 characters", path)
        return None


def count_tokens(text: str) -> int:
    tokenizer = _tokenizer(str(tokenizer_path()))
    if tokenizer is None:
        return len(text) // 2 + 1  # over-estimates every tokenizer we know: never overflows
    return len(tokenizer.encode(text, add_special_tokens=False).ids)
