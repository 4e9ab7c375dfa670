"""The vLLM server process for a prepared model: its command line, its environment (loopback,
offline, no usage stats, no proxies), start, stop, and waiting until it answers.
The model folder itself: rag_platform.llm_model (conversion), rag_platform.process.model_manifest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from rag_platform.process.model_manifest import PreparedModel
from rag_platform.process.offline import OFFLINE_ENVIRONMENT

DEFAULT_KVCACHE_GIB = 1
KVCACHE_ENV = "RAG_VLLM_KVCACHE_GIB"
EAGER_ENV = "RAG_VLLM_ENFORCE_EAGER"
RESTART_EAGER_ENV = "RAG_VLLM_RESTART_EAGER"


def restart_eager(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a server that died is started again in eager mode (env ``RAG_VLLM_RESTART_EAGER``,
    default on): without torch.compile it serves again in under a minute instead of two or more
    (vLLM 0.32 on CPU recompiles at every start), at some throughput until the next planned
    start (docs/benchmarks.md, "Under load and faults")."""
    environ = os.environ if environ is None else environ
    return environ.get(RESTART_EAGER_ENV, "1").strip().lower() not in ("0", "false", "no")


def kvcache_gib(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    raw = environ.get(KVCACHE_ENV, "").strip()
    if not raw:
        return DEFAULT_KVCACHE_GIB
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{KVCACHE_ENV} must be a whole number of GiB, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{KVCACHE_ENV} must be at least 1 (GiB), got {value}")
    return value


def vllm_server_command(
    model: PreparedModel,
    *,
    host: str = "127.0.0.1",
    port: int,
    max_model_len: int = 2048,
    api_key: str | None = None,
    enforce_eager: bool | None = None,
) -> list[str]:
    """Command line of vLLM's OpenAI-compatible server for ``model`` (CPU, offline).

    ``enforce_eager`` (default: env ``RAG_VLLM_ENFORCE_EAGER``, off) skips torch.compile:
    measured here, cold start 29 s instead of ~90 s, at ~20 % less throughput (1 stream
    50 vs ~62 tok/s; 32 streams 470 vs ~576 tok/s). vLLM 0.32 on CPU recompiles at every
    start (its AOT cache is written but not reused), so tests and demos want eager mode.
    """
    if enforce_eager is None:
        enforce_eager = os.environ.get(EAGER_ENV, "").strip().lower() in ("1", "true", "yes")
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model", str(model.path),
        "--served-model-name", model.served_name,
        "--max-model-len", str(int(max_model_len)),
        "--host", host,
        "--port", str(int(port)),
        # The folder is complete and local: no hub lookups, no remote code, no downloads.
        "--tokenizer", str(model.path),
        "--load-format", "safetensors",
        "--dtype", served_dtype(),
        "--generation-config", "auto",
        # Multimodal inputs could make the server fetch URLs; allow only a domain that
        # cannot exist (RFC 2606 ".invalid"), and never local files.
        "--allowed-media-domains", "media.invalid",
        # Per-interval throughput lines would flood the log; /metrics still has them.
        "--disable-log-stats",
        "--disable-uvicorn-access-log",
    ]
    if enforce_eager:
        command.append("--enforce-eager")
    if api_key:
        command += ["--api-key", api_key]
    return command


_PROXY_VARIABLES = (
    "http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
)


DTYPE_ENV = "RAG_LLM_DTYPE"


def served_dtype(cpuinfo: str | None = None) -> str:
    """bfloat16 where the CPU computes it natively (AVX-512 BF16 or AMX), float32 otherwise.

    On a CPU with AVX2 only (most laptops), oneDNN has no bf16 matmul and vLLM falls back to
    torch's emulated one: measured on such a 2-core machine, 32 concurrent streams got
    7 tokens/s in bfloat16. ``RAG_LLM_DTYPE`` overrides."""
    chosen = os.environ.get(DTYPE_ENV, "").strip()
    if chosen:
        return chosen
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = set(cpuinfo.split())
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def vllm_server_environment(base_env: Mapping[str, str]) -> dict[str, str]:
    """Environment for the vLLM server process: ``base_env`` plus the forced privacy switches."""
    env = dict(base_env)
    env["VLLM_CPU_KVCACHE_SPACE"] = str(kvcache_gib(env))
    env.update(OFFLINE_ENVIRONMENT)  # HF offline, no telemetry, VLLM_NO_USAGE_STATS, DO_NOT_TRACK
    env.update(
        {
            "VLLM_NO_USAGE_STATS": "1",
            "VLLM_DO_NOT_TRACK": "1",
            "VLLM_USE_MODELSCOPE": "False",  # never resolve models on modelscope.cn
            "VLLM_PLUGINS": "",  # load no third-party plugins discovered via entry points
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "0",  # no adapter downloads at run time
            "VLLM_MEDIA_URL_ALLOW_REDIRECTS": "0",
            # Otherwise vLLM picks the host's outward IP (by routing a UDP socket towards
            # 8.8.8.8) for its internal message queues: keep them on loopback.
            "VLLM_HOST_IP": "127.0.0.1",
            "VLLM_LOOPBACK_IP": "127.0.0.1",
        }
    )
    # An empty collector URL in case a future version ignores the switches above.
    env["VLLM_USAGE_STATS_SERVER"] = "http://127.0.0.1:9"
    # Requests to the loopback server and the hub libraries must never go through a proxy.
    for name in _PROXY_VARIABLES:
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    # Thread binding: vLLM's "auto" reserves one core for the busy-polling engine process and
    # binds OpenMP to the rest (on 2 cores: one). Measured on 2 cores: "auto" 59-61 tok/s for
    # one stream; "0-1" with no reserved core 32 tok/s (the threads fight the engine process).
    # An operator may still override VLLM_CPU_OMP_THREADS_BIND.
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "auto")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def start_vllm_server(
    model: PreparedModel,
    *,
    port: int,
    log_path: Path | str,
    host: str = "127.0.0.1",
    max_model_len: int = 2048,
    base_env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    enforce_eager: bool | None = None,
) -> subprocess.Popen:
    """Start the server in its own process group (so :func:`stop_vllm_server` reaps the engine
    core child too), stdout+stderr appended to ``log_path``."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = vllm_server_command(
        model, host=host, port=port, max_model_len=max_model_len, enforce_eager=enforce_eager
    )
    env = vllm_server_environment(os.environ if base_env is None else base_env)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            env=env,
            cwd=str(cwd) if cwd is not None else tempfile.gettempdir(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def restart_vllm_server(model: PreparedModel, *, port: int, log_path: Path | str, say) -> subprocess.Popen:
    """A server that died, started again: answers come back first, in eager mode unless
    RAG_VLLM_RESTART_EAGER=0 (then as the first start, RAG_VLLM_ENFORCE_EAGER)."""
    eager = restart_eager() or None
    if eager:
        say("vLLM restarts in eager mode (no torch.compile): serving again in under a minute, somewhat "
            "slower until the stack's next start")
    return start_vllm_server(model, port=port, log_path=log_path, enforce_eager=eager)


def stop_vllm_server(process: subprocess.Popen, *, timeout: float = 30.0) -> int | None:
    """SIGTERM the server's process group, wait, then SIGKILL whatever is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:  # children (EngineCore) may outlive the parent briefly
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            os.killpg(process.pid, 0)
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if process.poll() is None:
        process.wait(timeout=5)
    return process.returncode


def _log_tail(log_path: Path | str | None, lines: int = 40) -> str:
    if not log_path:
        return ""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    tail = "\n".join(text.splitlines()[-lines:])
    return f"\n--- last lines of {log_path} ---\n{tail}" if tail else ""


def wait_for_llm(
    base_url: str,
    timeout: float,
    *,
    process: subprocess.Popen | None = None,
    log_path: Path | str | None = None,
    api_key: str | None = None,
    interval: float = 0.5,
) -> None:
    """Poll ``GET {base_url}/models`` until it answers 200, or raise RuntimeError.

    ``base_url`` is the OpenAI base URL, e.g. ``http://127.0.0.1:8001/v1``. If ``process`` exits
    first or ``timeout`` seconds pass, the error names the cause and quotes the end of
    ``log_path``. Proxy variables are ignored (a loopback probe must not leave the host).
    """
    url = base_url.rstrip("/") + "/models"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"LLM server exited with code {process.returncode} before answering {url}"
                + _log_tail(log_path)
            )
        try:
            with opener.open(urllib.request.Request(url, headers=headers), timeout=5) as response:
                if response.status == 200:
                    json.loads(response.read() or b"{}")
                    return
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"LLM server at {url} did not answer within {timeout:.0f} s ({last_error})"
                + _log_tail(log_path)
            )
        time.sleep(interval)
