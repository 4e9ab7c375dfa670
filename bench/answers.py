"""Answer quality on policy-qa dev with the packaged model served by vLLM on this machine.

    .venv/bin/python bench/answers.py [--limit N] [--llm-base-url URL --llm-model NAME]

Starts the embedded benchmark database (var/bench) and, unless --llm-base-url is given, a
vLLM server for the packaged model on a free loopback port; then runs
``manage.py evaluate_answers`` against them."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_env import ROOT, django_setup  # noqa: E402


def main() -> None:
    argv = sys.argv[1:]
    dataset = str(ROOT.parent / "shared" / "eval" / "policy-qa-dev")
    if argv and not argv[0].startswith("-"):
        dataset, argv = argv[0], argv[1:]
    django_setup()
    from django.core.management import call_command

    from rag_platform import llm_model
    from rag_platform.process import vllm_server
    from rag_platform.embedded import free_loopback_port

    process = None
    if "--llm-base-url" not in argv:
        model = llm_model.prepare_model(Path(os.environ.get("RAG_MODEL_DIR") or ROOT / "var" / "models"))
        port = free_loopback_port()
        log = Path(tempfile.mkdtemp(prefix="answers-vllm-")) / "vllm.log"
        process = vllm_server.start_vllm_server(model, port=port, log_path=log)
        base_url = f"http://127.0.0.1:{port}/v1"
        vllm_server.wait_for_llm(base_url, timeout=900, process=process, log_path=log)
        argv += ["--llm-base-url", base_url, "--llm-model", model.served_name]
    try:
        call_command("evaluate_answers", dataset, *argv)
    finally:
        if process is not None:
            vllm_server.stop_vllm_server(process)


if __name__ == "__main__":
    main()
