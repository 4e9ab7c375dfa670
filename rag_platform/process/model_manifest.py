"""What a prepared model folder is, and how it is checked: its ``manifest.json`` (the sha256 of
every file and one overall ``sha256``, the hash that belongs in the audit trail) and the one
checksum of a model folder, ``tree_sha256``, which the embedding model and the attestation
report use too. Conversion: rag_platform.llm_model; serving: rag_platform.process.vllm_server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVED_NAME = "smollm2-135m-instruct"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


class ModelIntegrityError(RuntimeError):
    """The converted model folder does not match its manifest."""


@dataclass(frozen=True)
class PreparedModel:
    path: Path
    served_name: str
    sha256: str


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
    return overall_sha256({name: file_sha256(folder / name) for name in model_files(folder)
                           if "__pycache__" not in name.split("/")})


def model_files(folder: Path) -> list[str]:
    """Every regular file of the folder (recursively, POSIX relative names) but the manifest."""
    names = []
    for item in sorted(folder.rglob("*")):
        if item.is_file():
            name = item.relative_to(folder).as_posix()
            if name != MANIFEST_NAME:
                names.append(name)
    return names


def hash_model_folder(folder: Path) -> dict[str, str]:
    return {name: file_sha256(folder / name) for name in model_files(folder)}


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


def quick_manifest_check(folder: Path, source: Mapping[str, Any]) -> dict | None:
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
