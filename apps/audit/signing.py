"""The Ed25519 key that signs checkpoints and export manifests, kept outside the database.

Source, in order: ``RAG_AUDIT_SIGNING_KEY`` (hex or base64 of the 32-byte seed, or PEM),
the file named by ``RAG_AUDIT_SIGNING_KEY_FILE``, else ``<data dir>/keys/audit-signing.key``
created once with mode 0600. A database superuser who rewrites the trail cannot re-sign
it without this key; the public key goes with every exported checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings


def default_key_path() -> Path:
    return Path(settings.DATA_DIR) / "keys" / "audit-signing.key"


def _parse_private(raw: bytes) -> Ed25519PrivateKey:
    text = raw.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(text, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the audit signing key must be an Ed25519 key")
        return key
    for decode in (binascii.unhexlify, base64.b64decode):
        try:
            seed = decode(text)
        except (binascii.Error, ValueError):
            continue
        if len(seed) == 32:
            return Ed25519PrivateKey.from_private_bytes(seed)
    raise ValueError("the audit signing key must be PEM, or hex/base64 of a 32-byte Ed25519 seed")


def load_private_key() -> Ed25519PrivateKey:
    if value := os.environ.get("RAG_AUDIT_SIGNING_KEY"):
        return _parse_private(value.encode())
    if file_name := os.environ.get("RAG_AUDIT_SIGNING_KEY_FILE"):
        return _parse_private(Path(file_name).read_bytes())
    path = default_key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(seed.hex())
    return _parse_private(path.read_bytes())


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()


def sign(message: bytes) -> tuple[str, str]:
    """Returns (signature hex, public key hex)."""
    key = load_private_key()
    return key.sign(message).hex(), public_key_hex(key.public_key())


def verify(message: bytes, signature_hex: str, public_hex: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def local_public_key_hex() -> str:
    return public_key_hex(load_private_key().public_key())
