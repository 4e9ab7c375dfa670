"""The on-premises LLM: vLLM's OpenAI-compatible chat API, through the openai client.

Only the configured LLM_BASE_URL is ever contacted (the embedded default is loopback).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings


class LLMUnavailable(Exception):
    """The model server could not answer; the message is shown to the user."""


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int


@lru_cache(maxsize=4)
def _client(base_url: str, timeout: float):
    import httpx
    import openai

    # trust_env=False: proxy variables must never route on-premises traffic elsewhere.
    return openai.OpenAI(
        base_url=base_url,
        api_key=settings.LLM_API_KEY,
        timeout=timeout,
        max_retries=1,
        http_client=httpx.Client(trust_env=False, timeout=timeout),
    )


def chat_completion(messages: list[dict[str, str]], *, max_tokens: int | None = None) -> Completion:
    import openai

    client = _client(settings.LLM_BASE_URL, settings.LLM_TIMEOUT_SECONDS)
    started = time.monotonic()
    try:
        response = client.chat.completions.create(
            model=settings.LLM_MODEL,
            messages=messages,
            max_tokens=max_tokens or settings.LLM_MAX_TOKENS,
            temperature=0.0,
            extra_body={"repetition_penalty": settings.LLM_REPETITION_PENALTY},
        )
    except openai.APITimeoutError:
        raise LLMUnavailable(
            f"The language model did not answer within {settings.LLM_TIMEOUT_SECONDS:.0f} seconds."
        ) from None
    except openai.APIConnectionError:
        raise LLMUnavailable(
            "The language model server is not reachable. Ask your operator to check that it is running."
        ) from None
    except openai.APIStatusError as error:
        raise LLMUnavailable(f"The language model server returned an error ({error.status_code}).") from None
    latency_ms = int((time.monotonic() - started) * 1000)
    usage = response.usage
    return Completion(
        text=(response.choices[0].message.content or "").strip(),
        model=response.model,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        latency_ms=latency_ms,
    )
