"""The on-premises LLM: vLLM's OpenAI-compatible chat API, through the openai client.

Only the configured LLM_BASE_URL is ever contacted (the embedded default is loopback).
Answers are streamed (``chat_stream``); concurrent askers share one thread-safe client
with a connection pool and are batched by vLLM: nothing here serialises them.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings


class LLMUnavailable(Exception):
    """The model server could not answer; the message is shown to the user."""


@dataclass
class Completion:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    first_token_ms: int | None = None
    finish_reason: str | None = None  # "length": cut off at max_tokens


@lru_cache(maxsize=4)
def _client(base_url: str, timeout: float):
    import httpx
    import openai

    # trust_env=False: proxy variables must never route on-premises traffic elsewhere.
    # Connect quickly or fail; a read may take up to LLM_TIMEOUT_SECONDS between tokens.
    timeouts = httpx.Timeout(timeout, connect=settings.LLM_CONNECT_TIMEOUT_SECONDS)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    return openai.OpenAI(
        base_url=base_url,
        api_key=settings.LLM_API_KEY,
        timeout=timeouts,
        max_retries=0,  # retries are ours: only before the first token, bounded
        http_client=httpx.Client(trust_env=False, timeout=timeouts, limits=limits),
    )


def _unavailable(error: Exception) -> LLMUnavailable:
    import openai

    if isinstance(error, openai.APITimeoutError):
        return LLMUnavailable(f"The language model did not answer within {settings.LLM_TIMEOUT_SECONDS:.0f} seconds.")
    if isinstance(error, openai.APIConnectionError):
        return LLMUnavailable(
            "The language model server is not reachable. Ask your operator to check that it is running."
        )
    if isinstance(error, openai.APIStatusError):
        return LLMUnavailable(f"The language model server returned an error ({error.status_code}).")
    return LLMUnavailable(f"The language model failed: {error}")


def _past_deadline(deadline: float) -> LLMUnavailable:
    return LLMUnavailable(f"The language model did not finish its answer within {deadline:.0f} seconds.")


def _open_stream(messages: list[dict[str, str]], max_tokens: int | None):
    """The streamed request; a failed connection or a 5xx is retried ``LLM_RETRIES`` times."""
    import openai

    client = _client(settings.LLM_BASE_URL, settings.LLM_TIMEOUT_SECONDS)
    attempt = 0
    while True:
        try:
            return client.chat.completions.create(
                model=settings.LLM_MODEL,
                messages=messages,
                max_tokens=max_tokens or settings.LLM_MAX_TOKENS,
                temperature=0.0,
                stream=True,
                stream_options={"include_usage": True},
                extra_body={"repetition_penalty": settings.LLM_REPETITION_PENALTY},
            )
        except (openai.APIConnectionError, openai.InternalServerError) as error:
            if attempt >= settings.LLM_RETRIES:
                raise _unavailable(error) from None
            attempt += 1
            time.sleep(0.5 * attempt)
        except openai.OpenAIError as error:
            raise _unavailable(error) from None


def chat_stream(messages: list[dict[str, str]], *, max_tokens: int | None = None, result: Completion | None = None) -> Iterator[str]:
    """Yield the answer's text as it is generated; fill ``result`` (text, usage, timings).

    Raises LLMUnavailable. A failed connection or a 5xx before the first token is retried
    ``LLM_RETRIES`` times with a short backoff; after the first token nothing is retried
    (the user already sees the answer). The whole answer must end within
    ``LLM_ANSWER_DEADLINE_SECONDS``: a watchdog closes the stream, so a server that stalls
    mid-read or trickles tokens costs the asker a clear error, never a hung page."""
    import openai

    result = result if result is not None else Completion("", settings.LLM_MODEL, None, None, 0)
    started = time.monotonic()
    stream = _open_stream(messages, max_tokens)
    parts: list[str] = []
    deadline = settings.LLM_ANSWER_DEADLINE_SECONDS
    expired = threading.Event()

    def _expire() -> None:
        # Closing the response does not wake a read blocked in another thread; shutting the
        # socket down does, and the loop below then raises.
        expired.set()
        try:
            stream.response.extensions["network_stream"].get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        except (KeyError, AttributeError, OSError):
            stream.close()

    watchdog = threading.Timer(max(0.0, deadline - (time.monotonic() - started)), _expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        with stream:
            for chunk in stream:
                if expired.is_set():
                    break
                if chunk.model:
                    result.model = chunk.model
                if chunk.usage:
                    result.prompt_tokens = chunk.usage.prompt_tokens
                    result.completion_tokens = chunk.usage.completion_tokens
                if chunk.choices and chunk.choices[0].finish_reason:
                    result.finish_reason = chunk.choices[0].finish_reason
                if chunk.choices and chunk.choices[0].delta.content:
                    text = chunk.choices[0].delta.content
                    if result.first_token_ms is None:
                        result.first_token_ms = int((time.monotonic() - started) * 1000)
                    parts.append(text)
                    result.text = "".join(parts)
                    yield text
    except openai.OpenAIError as error:
        if expired.is_set():
            raise _past_deadline(deadline) from None
        raise _unavailable(error) from None
    except Exception as error:  # httpx errors mid-stream (server died)
        import httpx

        if expired.is_set():
            raise _past_deadline(deadline) from None
        if isinstance(error, httpx.HTTPError):
            raise LLMUnavailable(f"The language model stopped answering mid-way ({type(error).__name__}).") from None
        raise
    finally:
        watchdog.cancel()
        result.latency_ms = int((time.monotonic() - started) * 1000)
    if expired.is_set():
        raise _past_deadline(deadline)
    result.text = "".join(parts).strip()


def chat_completion(messages: list[dict[str, str]], *, max_tokens: int | None = None) -> Completion:
    """The whole answer at once (the command line and the no-JavaScript page)."""
    result = Completion("", settings.LLM_MODEL, None, None, 0)
    for _ in chat_stream(messages, max_tokens=max_tokens, result=result):
        pass
    return result


_INFO_SECONDS = 60.0
_info_cache: dict[str, tuple[float, dict]] = {}


def _server_root(base_url: str) -> str:
    return re.sub(r"/v1/?$", "", base_url.rstrip("/"))


def server_model_info() -> dict:
    """The served model's card from ``/v1/models`` (vLLM adds ``max_model_len``); {} when the
    server does not answer. Cached for a minute per endpoint: the window does not change
    while a server runs, and a dead server must not cost every question a timeout."""
    base_url = settings.LLM_BASE_URL
    now = time.monotonic()
    cached = _info_cache.get(base_url)
    if cached and now - cached[0] < _INFO_SECONDS:
        return cached[1]
    info: dict = {}
    try:
        client = _client(base_url, settings.LLM_CONNECT_TIMEOUT_SECONDS)
        for card in client.models.list().data:
            extra = card.model_dump()
            if card.id == settings.LLM_MODEL or not info:
                info = extra
    except Exception:  # noqa: BLE001 - any failure means "the server cannot say"
        info = {}
    _info_cache[base_url] = (now, info)
    return info


def server_token_count(text: str) -> int | None:
    """The number of tokens of ``text`` by the served model's tokenizer (vLLM ``/tokenize``),
    or None when the server does not offer it."""
    import httpx

    client = _client(settings.LLM_BASE_URL, settings.LLM_CONNECT_TIMEOUT_SECONDS)
    try:
        response = client._client.post(  # the openai client's httpx client: same pool, no proxies
            f"{_server_root(settings.LLM_BASE_URL)}/tokenize",
            json={"model": settings.LLM_MODEL, "prompt": text, "add_special_tokens": False},
            headers={"Authorization": f"Bearer {settings.LLM_API_KEY}"},
            timeout=settings.LLM_CONNECT_TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            return None
        body = response.json()
        return int(body["count"]) if "count" in body else len(body["tokens"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None
