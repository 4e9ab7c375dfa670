"""The askers: signed-in people asking over HTTP, each question timed and classified.

Even-numbered users ask on the web page's stream (``/ask/stream/``, session cookie and CSRF),
odd-numbered ones through the API (``/api/v1/ask`` with a token; every other question streamed).
Every question carries a unique User-Agent, so its audit event can be found after the run.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx

PASSWORD = "chaos-bench-" + uuid.uuid4().hex[:12]
LABELS = ("Verified answer", "Quotation", "Not stated")


@dataclass
class Result:
    user: str
    channel: str
    phase: str
    agent: str
    started: float
    ttft: float | None = None
    total: float | None = None
    status: int | None = None
    outcome: str = ""  # answered / refused / error (clear) / http_500 / hung / connection
    detail: str = ""
    labelled: bool = True
    sequence: int | None = None


@dataclass
class Load:
    base: str
    questions: list[str]
    timeout: float
    think: tuple[float, float]
    run_id: str
    phase: str = "setup"
    results: list[Result] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, result: Result) -> None:
        with self.lock:
            self.results.append(result)


def client(base: str, timeout: float) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=httpx.Timeout(timeout, connect=10), trust_env=False)


def sign_in(base: str, username: str, timeout: float) -> httpx.Client:
    web = client(base, timeout)
    web.get("/login/")
    web.post("/login/", data={"username": username, "password": PASSWORD,
                              "csrfmiddlewaretoken": web.cookies["csrftoken"]}, headers={"Referer": base + "/login/"})
    if "sessionid" not in web.cookies:
        raise RuntimeError(f"sign-in failed for {username}")
    return web


def mint_token(web: httpx.Client) -> str:
    page = web.get("/account/tokens/").text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    page = web.post("/account/tokens/", data={"name": "chaos", "days": "1", "scopes": ["ask"], "password": PASSWORD,
                                              "csrfmiddlewaretoken": csrf},
                    headers={"Referer": str(web.base_url) + "/account/tokens/"}).text
    return re.search(r'id="new-token" type="text" readonly value="([^"]+)"', page).group(1)


def _read_sse(response, result: Result, started: float) -> dict | None:
    kind, done = None, None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
            if kind == "token" and result.ttft is None:
                result.ttft = time.monotonic() - started
        elif line.startswith("data: ") and kind == "done":
            done = json.loads(line[6:])
    return done


def ask_once(load: Load, http: httpx.Client, result: Result, question: str, token: str | None, stream: bool) -> None:
    started = result.started
    headers = {"User-Agent": result.agent}
    try:
        if token is None:
            headers.update({"X-CSRFToken": http.cookies["csrftoken"], "Referer": load.base + "/"})
            request = http.build_request("POST", "/ask/stream/", data={"question": question}, headers=headers)
        else:
            headers["Authorization"] = f"Bearer {token}"
            request = http.build_request("POST", "/api/v1/ask", json={"question": question, "stream": stream},
                                         headers=headers)
        response = http.send(request, stream=True)
        try:
            result.status = response.status_code
            if response.status_code != 200 or "event-stream" not in response.headers.get("content-type", ""):
                body = response.read().decode(errors="replace")
                done = json.loads(body) if response.status_code == 200 else None
                if done is None:
                    # A 503 that says what happened (the database is away) is a clear error, not a 500.
                    clear = response.status_code == 503 and bool(_message(body))
                    result.outcome = "http_500" if response.status_code >= 500 and not clear else "error"
                    result.detail = _message(body)
                    return
                result.ttft = time.monotonic() - started
            else:
                done = _read_sse(response, result, started)
        finally:
            response.close()
        result.total = time.monotonic() - started
        classify(result, done)
    except httpx.TimeoutException:
        result.outcome, result.detail = "hung", f"no answer within {load.timeout:.0f} s"
    except httpx.HTTPError as error:
        result.outcome, result.detail = "connection", type(error).__name__
    finally:
        if result.total is None:
            result.total = time.monotonic() - started


def classify(result: Result, done: dict | None) -> None:
    if not done:
        result.outcome, result.detail = "error", "stream ended without a done event"
        return
    result.sequence = done.get("audit_sequence")
    outcome = done.get("outcome", "")
    if outcome == "answered":
        result.outcome = "answered"
        result.labelled = bool(done.get("label") or done.get("answer_kind"))
    elif outcome in ("refused", "no_access"):
        result.outcome = "refused"
    else:
        result.outcome, result.detail = "error", f"{outcome}: {(done.get('error') or done.get('reason') or '')[:120]}"


def _message(body: str) -> str:
    try:
        return str(json.loads(body).get("detail", ""))[:160]
    except (ValueError, AttributeError):
        text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
        return text[:160]


def asker(load: Load, index: int) -> None:
    username = f"chaos{index:03d}"
    channel = "web" if index % 2 == 0 else "api"
    rng = random.Random(index)
    http, token, asked = None, None, 0
    time.sleep(rng.uniform(0, load.think[1]))  # spread the first questions
    while not load.stop.is_set():
        try:
            if http is None:
                http = sign_in(load.base, username, load.timeout)
                token = mint_token(http) if channel == "api" else None
        except (httpx.HTTPError, RuntimeError, AttributeError, KeyError):
            http = None
            load.stop.wait(5)
            continue
        result = Result(user=username, channel=channel, phase=load.phase,
                        agent=f"chaos-bench/{load.run_id} q={uuid.uuid4().hex}", started=time.monotonic())
        ask_once(load, http, result, rng.choice(load.questions), token, stream=asked % 2 == 0)
        load.record(result)
        asked += 1
        load.stop.wait(rng.uniform(*load.think))


def start_askers(load: Load, users: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=asker, args=(load, i), daemon=True, name=f"asker-{i}") for i in range(users)]
    for thread in threads:
        thread.start()
    return threads
