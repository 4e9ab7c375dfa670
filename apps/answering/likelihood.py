"""How likely the served model finds the question given an evidence window: log p(question | window).

The "question likelihood" reranking of UPR (Sachan et al. 2022, "Improving Passage Retrieval
with Zero-Shot Question Generation"): a window that answers a question makes the question
more probable to the language model than a window that is merely on the topic, and the
signal needs no training on any question set. vLLM gives it in one batched call: the
completions API with ``echo`` returns the log probability of every prompt token, and the
question's tokens are those after the window's prefix. Mean per token, so questions of any
length compare.

``question_likelihoods`` returns None when the server cannot say (down, an API without
prompt log probabilities): ranking then stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings

logger = logging.getLogger(__name__)

_PREFIX = "Passage: {window}\nA question this passage answers:"


def question_likelihoods(question: str, windows: Sequence[str]) -> list[float] | None:
    """Mean log p(question token | window, earlier question tokens), one per window."""
    if not windows:
        return []
    from apps.answering.llm import _client

    prefixes = [_PREFIX.format(window=w) for w in windows]
    prompts = [f"{p} {question.strip()}" for p in prefixes]
    try:
        client = _client(settings.LLM_BASE_URL, settings.LLM_TIMEOUT_SECONDS)
        response = client.completions.create(model=settings.LLM_MODEL, prompt=prompts, max_tokens=1, echo=True,
                                             logprobs=0, temperature=0.0)
    except Exception as error:  # noqa: BLE001 - any failure: rank without it
        logger.info("question likelihood unavailable: %s", error)
        return None
    scores: list[float] = []
    for choice in sorted(response.choices, key=lambda c: c.index):
        prefix, prompt = prefixes[choice.index], prompts[choice.index]
        logprobs = choice.logprobs
        if logprobs is None or not logprobs.text_offset:
            return None
        values = [lp for offset, lp in zip(logprobs.text_offset, logprobs.token_logprobs, strict=False)
                  if len(prefix) <= offset < len(prompt) and lp is not None]
        scores.append(sum(values) / len(values) if values else float("-inf"))
    return scores
