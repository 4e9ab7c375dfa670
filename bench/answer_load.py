"""Answering under load, through the platform's HTTP endpoint, side by side with vLLM direct.

Starts (on 127.0.0.1 only) an embedded PostgreSQL, the vLLM server with the packaged model
(RAG_VLLM_ENFORCE_EAGER=1 by default here: ~30 s cold start) and the web server as the stack
runs it (gunicorn gthread, 1 worker, 64 threads); ingests sample_corpus/ with the product's
ingestion; then measures in one run:

* platform overhead: N concurrent askers POST the sample questions to /ask/stream/ (SSE) and
  read the streams to the end, versus the same prompts (the messages the platform built,
  from each question's audit event) sent to vLLM directly with the openai client; tokens/s =
  completion tokens / wall time; rounds alternate direct, platform, direct, platform;
* the same, once first with no stored sentence vectors (the cost of a chunk's first use as a
  source), reported apart;
* time to first token through the platform (POST to the first ``token`` event), p50 and p95,
  at 1 and 8 concurrent users.

    make bench-answer      # or: .venv/bin/python bench/answer_load.py [--concurrency 32]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAG_VLLM_ENFORCE_EAGER", "1")
from search_env import ROOT, database_url, django_setup  # noqa: E402

PASSWORD = "bench-password-not-secret"


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def start_llm(tmp: Path):
    from rag_platform import llm_model
    from rag_platform.process import vllm_server
    from rag_platform.embedded import free_loopback_port

    model = llm_model.prepare_model(Path(os.environ.get("RAG_MODEL_DIR") or ROOT / "var" / "models"))
    port = free_loopback_port()
    process = vllm_server.start_vllm_server(model, port=port, log_path=tmp / "vllm.log")
    base_url = f"http://127.0.0.1:{port}/v1"
    vllm_server.wait_for_llm(base_url, timeout=900, process=process, log_path=tmp / "vllm.log")
    return model, base_url, process


def start_web(tmp: Path, base_url: str, model) -> tuple[str, subprocess.Popen]:
    from rag_platform.embedded import child_environment, free_loopback_port

    port = free_loopback_port()
    env = child_environment(
        DATABASE_URL=database_url(), LLM_BASE_URL=base_url, LLM_MODEL=model.served_name, LLM_MODEL_SHA256=model.sha256,
        DJANGO_ALLOWED_HOSTS="127.0.0.1", RAG_DATA_DIR=os.environ["RAG_DATA_DIR"],
    )
    command = [sys.executable, "-m", "gunicorn", "rag_platform.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--worker-class", "gthread", "--workers", "1", "--threads", "64", "--timeout", "300"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(tmp / "web.log", "wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    import httpx

    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            httpx.get(url + "/login/", timeout=2)
            return url, process
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"web server did not start; see {tmp / 'web.log'}")


def web_session(url: str, username: str):
    import httpx

    client = httpx.Client(base_url=url, timeout=600, trust_env=False)
    client.get("/login/")
    client.post("/login/", data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
                headers={"Referer": url + "/login/"})
    assert "sessionid" in client.cookies, "login failed"
    return client


def ask_over_http(client, question: str) -> dict:
    """One streamed answer; returns time to first token, total time, the done event."""
    started = time.perf_counter()
    first = None
    done = None
    with client.stream("POST", "/ask/stream/", data={"question": question, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
                       headers={"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url) + "/"}) as response:
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
                if kind == "token" and first is None:
                    first = time.perf_counter() - started
            elif line.startswith("data: ") and kind == "done":
                done = json.loads(line[6:])
    return {"ttft": first, "total": time.perf_counter() - started, "done": done}


def run_concurrently(n: int, work) -> tuple[float, list]:
    results: list = [None] * n
    def run(i):
        results[i] = work(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-answer-"))
    os.environ.setdefault("RAG_DATA_DIR", str(tmp / "data"))
    django_setup()
    from django.contrib.auth import get_user_model

    from apps.answering.prompts import Evidence, build_messages
    from apps.audit.models import AuditEvent
    from apps.corpus.models import Collection
    from apps.ingestion.services import document_ingest, document_upload

    collection, created = Collection.objects.get_or_create(name="bench-samples")
    if created:
        for path in sorted((ROOT / "sample_corpus").iterdir()):
            if path.suffix in {".docx", ".pdf", ".md", ".txt", ".html"}:
                data = path.read_bytes()
                upload = document_upload(collection=collection, uploaded_by=None, name=path.name, content=io.BytesIO(data), size=len(data))
                document_ingest(document_id=upload.document.id)
    users = []
    for i in range(args.concurrency):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-asker-{i}")
        user.set_password(PASSWORD)
        user.save()
        collection.reader_users.add(user)
        users.append(user.username)
    questions = [q["question"] for q in json.loads((ROOT / "sample_corpus" / "questions.json").read_text())]

    model, base_url, llm_process = start_llm(tmp)
    web_url, web_process = start_web(tmp, base_url, model)
    try:
        import httpx
        import openai

        clients = [web_session(web_url, name) for name in users]
        # The prompts the platform builds, from each question's audit event.
        for q in questions:
            ask_over_http(clients[0], q)
        prompts = {}
        from apps.audit.selectors import event_content

        for event in AuditEvent.objects.filter(event_type="question.asked").order_by("sequence"):
            content = event_content(event)  # sealed at rest (apps.audit.content)
            if content.get("question") not in questions:
                continue
            evidence = [Evidence(e["n"], e["sentence"]) for e in content.get("evidence", [])]
            prompts[content["question"]] = build_messages(content["search_query"], evidence)
        direct = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0,
                               http_client=httpx.Client(trust_env=False, timeout=600,
                                                        limits=httpx.Limits(max_connections=256)))
        from django.conf import settings

        def direct_one(i):
            started = time.perf_counter()
            first, tokens = None, 0
            stream = direct.chat.completions.create(
                model=model.served_name, messages=prompts[questions[i % len(questions)]], max_tokens=settings.LLM_MAX_TOKENS,
                temperature=0.0, stream=True, stream_options={"include_usage": True},
                extra_body={"repetition_penalty": settings.LLM_REPETITION_PENALTY})
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content and first is None:
                    first = time.perf_counter() - started
                if chunk.usage:
                    tokens = chunk.usage.completion_tokens
            return {"ttft": first, "tokens": tokens}

        def platform_one(i):
            result = ask_over_http(clients[i], questions[i % len(questions)])
            event = AuditEvent.objects.get(sequence=result["done"]["audit_sequence"])
            result["tokens"] = event.payload.get("completion_tokens") or 0
            return result

        n = args.concurrency
        # Once with no stored sentence vectors (each chunk's are computed on its first use as
        # a source; apps.answering.evidence), reported apart; then the measured rounds.
        from apps.corpus.models import Chunk

        Chunk.objects.update(sentence_vectors=None)
        wall, results = run_concurrently(n, platform_one)
        tokens = sum(r["tokens"] for r in results)
        print(f"cold    platform: {n} concurrent, {tokens} tokens in {wall:.1f} s = {tokens / wall:.0f} tokens/s "
              "(sentence vectors computed on first use)")
        rates = {"direct": [], "platform": []}
        for round_number in range(args.rounds):
            for label, work in (("direct", direct_one), ("platform", platform_one)):
                wall, results = run_concurrently(n, work)
                tokens = sum(r["tokens"] for r in results)
                rates[label].append(tokens / wall)
                print(f"round {round_number + 1} {label:>8}: {n} concurrent, {tokens} tokens in {wall:.1f} s = {tokens / wall:.0f} tokens/s")
        direct_rate, platform_rate = statistics.mean(rates["direct"]), statistics.mean(rates["platform"])
        print(f"platform / direct tokens/s at {n} concurrent: {platform_rate:.0f} / {direct_rate:.0f} = {platform_rate / direct_rate:.2f}")

        for users_at_once, repeats in ((1, 12), (8, 3)):
            ttfts = []
            for _ in range(repeats):
                _, results = run_concurrently(users_at_once, lambda i: ask_over_http(clients[i], questions[i % len(questions)]))
                ttfts += [r["ttft"] * 1000 for r in results if r["ttft"] is not None]
            print(f"time to first token through the platform, {users_at_once} concurrent: p50 {percentile(ttfts, 50):.0f} ms, "
                  f"p95 {percentile(ttfts, 95):.0f} ms ({len(ttfts)} answers)")
    finally:
        from rag_platform.process import vllm_server

        os.killpg(web_process.pid, 15)
        vllm_server.stop_vllm_server(llm_process)


if __name__ == "__main__":
    main()
