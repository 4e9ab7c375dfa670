"""Count prompt tokens with the served model's own tokenizer, so a prompt never overflows
the model's context window (vLLM's --max-model-len).

The packaged model's tokenizer.json is read locally (no round trip). Any other served model
is counted by its server (vLLM ``/tokenize``); when neither is available, 1 token per 2
characters, which over-estimates every tokenizer we know."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


def tokenizer_path() -> Path:
    if settings.LLM_TOKENIZER_PATH:
        return Path(settings.LLM_TOKENIZER_PATH)
    from rag_platform.process.model_manifest import SERVED_NAME

    return Path(settings.LLM_MODEL_DIR) / SERVED_NAME / "tokenizer.json"


@lru_cache(maxsize=2)
def _tokenizer(path: str):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception:  # noqa: BLE001 - no local tokenizer (remote vLLM): counted conservatively
        logger.warning("no tokenizer at %s: counting 1 token per 2 characters", path)
        return None


def _local_tokenizer():
    from rag_platform.process.model_manifest import SERVED_NAME

    if settings.LLM_TOKENIZER_PATH or settings.LLM_MODEL == SERVED_NAME:
        return _tokenizer(str(tokenizer_path()))
    return None


def count_tokens(text: str) -> int:
    tokenizer = _local_tokenizer()
    if tokenizer is not None:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)
    from apps.answering.llm import server_token_count

    counted = server_token_count(text)
    if counted is not None:
        return counted
    return len(text) // 2 + 1  # over-estimates every tokenizer we know: never overflows
