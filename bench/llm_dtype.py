"""vLLM tokens/s on this CPU in one dtype: 1, 8 and 32 concurrent 64-token completions.

    .venv/bin/python bench/llm_dtype.py float32
    .venv/bin/python bench/llm_dtype.py bfloat16

Starts the packaged model with the product's server command (eager mode, loopback only)
and RAG_LLM_DTYPE set to the given dtype; see rag_platform/vllm_server.served_dtype.
"""

import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    dtype = sys.argv[1] if len(sys.argv) > 1 else "float32"
    os.environ["RAG_VLLM_ENFORCE_EAGER"] = "1"
    os.environ["RAG_LLM_DTYPE"] = dtype
    import httpx
    import openai

    from rag_platform import llm_model
    from rag_platform.process import vllm_server
    from rag_platform.embedded import free_loopback_port

    model = llm_model.prepare_model(Path(os.environ.get("RAG_MODEL_DIR") or ROOT / "var" / "models"))
    port = free_loopback_port()
    log = ROOT / "var" / f"bench-llm-{dtype}.log"
    process = vllm_server.start_vllm_server(model, port=port, log_path=log)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        vllm_server.wait_for_llm(base, timeout=600, process=process, log_path=log)
        client = openai.OpenAI(base_url=base, api_key="none", max_retries=0,
                               http_client=httpx.Client(trust_env=False, timeout=600, limits=httpx.Limits(max_connections=64)))

        def one(results, i):
            reply = client.chat.completions.create(
                model=model.served_name, max_tokens=64, temperature=0,
                messages=[{"role": "user", "content": f"Write a short story about a lighthouse keeper number {i}."}])
            results.append(reply.usage.completion_tokens)

        for n in (1, 8, 32):
            results: list[int] = []
            started = time.perf_counter()
            threads = [threading.Thread(target=one, args=(results, i)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print(f"{dtype}: {n} concurrent: {sum(results) / (time.perf_counter() - started):.1f} tokens/s", flush=True)
    finally:
        vllm_server.stop_vllm_server(process)


if __name__ == "__main__":
    main()
