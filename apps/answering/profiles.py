"""Prompt profiles per model, and the window and tokenizer of the server that serves it.

``LLM_PROMPT_PROFILE`` picks one; unset, it follows the model's name: the packaged SmolLM2
(and other models under 1B parameters by their name) get **small**, anything else
**capable**. The context window and the token count come from the vLLM server itself
(``/v1/models`` ``max_model_len``, ``/tokenize``) so a remote model's window and tokenizer
are used, not the packaged model's files; when the server cannot say, the configured
``LLM_CONTEXT_TOKENS`` and the local tokenizer (apps.answering.tokens) are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

_SMALL_MODEL = re.compile(r"smollm|(?<![\d.])(?:135|270|360|500)m\b|0\.5b|tinyllama|qwen2\.5-0\.5", re.IGNORECASE)


@dataclass(frozen=True)
class Profile:
    name: str
    evidence_windows: int  # evidence windows in the prompt
    max_answer_sentences: int


PROFILES = {
    # One window: the 135M model answers best from the single best evidence window, and with
    # one source shown an uncited sentence can only rest on that source.
    "small": Profile("small", evidence_windows=1, max_answer_sentences=1),
    "capable": Profile("capable", evidence_windows=12, max_answer_sentences=3),
}


def profile_for(model: str | None = None) -> Profile:
    configured = (settings.LLM_PROMPT_PROFILE or "").strip().lower()
    if configured:
        return PROFILES[configured]
    return PROFILES["small" if _SMALL_MODEL.search(model or settings.LLM_MODEL) else "capable"]


def context_window() -> int:
    """The served model's max_model_len, else LLM_CONTEXT_TOKENS."""
    from apps.answering.llm import server_model_info

    info = server_model_info()
    return int(info.get("max_model_len") or settings.LLM_CONTEXT_TOKENS)
