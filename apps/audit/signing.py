"""The Ed25519 key that signs chain heads and export manifests, held by the signer only.

Only the process started as the signer (``RAG_AUDIT_SIGNER=1``: the stack's signer
worker, compose's and Kubernetes' ``signer``, systemd's private-rag-signer) loads the private
key; web, workers and beat ask it (apps.audit.signer). Source, in order: the environment
variable ``RAG_AUDIT_SIGNING_KEY`` (hex or base64 of the 32-byte seed, or PEM; read here and
nowhere else, never a setting: rag_platform/conf/__init__.py says why), the file of the
``AUDIT_SIGNING_KEY_FILE`` setting (``RAG_AUDIT_SIGNING_KEY_FILE``), else
``<data dir>/keys/audit-signing.key``. A missing key
stops the signer with an error: it is created once, on purpose, by ``manage.py
audit_keygen``, which prints the public key and fingerprint to pin (never silently anew).

Verifiers trust only what the operator pinned (``trusted_public_key``): the public key
(hex) or its fingerprint (``sha256:<hex>``), from ``--public-key`` or ``RAG_AUDIT_PIN``.
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


KEY_VARIABLE = "RAG_AUDIT_SIGNING_KEY"


def default_key_path() -> Path:
    return Path(settings.DATA_DIR) / "keys" / "audit-signing.key"


def key_file_path() -> Path:
    """The signing key's file: the AUDIT_SIGNING_KEY_FILE setting, else the default path."""
    return Path(settings.AUDIT_SIGNING_KEY_FILE or default_key_path())


def key_from_environment() -> str:
    """``RAG_AUDIT_SIGNING_KEY``, the key itself, or "": the one tunable apps read from the
    environment (a secret only the signer is given; rag_platform/conf/__init__.py)."""
    return os.environ.get(KEY_VARIABLE, "")


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


class SigningKeyUnavailable(RuntimeError):
    """This process may not sign, or the key is missing: the signer must not invent one."""


def is_signer() -> bool:
    return bool(getattr(settings, "AUDIT_SIGNER", False))


def load_private_key() -> Ed25519PrivateKey:
    if not is_signer():
        raise SigningKeyUnavailable("this process is not the audit signer (RAG_AUDIT_SIGNER=1 is set only for the "
                                    "signer); ask it with apps.audit.signer")
    if value := key_from_environment():
        return _parse_private(value.encode())
    path = key_file_path()
    if not path.exists():
        raise SigningKeyUnavailable(
            f"audit signing key {path} is missing: restore it from your key store, or create a first key with "
            "`manage.py audit_keygen` (then pin the public key it prints); a new key is never made silently")
    return _parse_private(path.read_bytes())


def generate_key_file(path: Path | None = None) -> str:
    """Create the signing key (mode 0600, refuses to overwrite); returns the public key hex."""
    path = path or default_key_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(seed.hex())
    return public_key_hex(key.public_key())


def fingerprint(public_hex: str) -> str:
    return "sha256:" + key_id(public_hex)


def pinned_key() -> str:
    """The operator's pin from settings (RAG_AUDIT_PIN: hex, ``sha256:`` fingerprint or a file)."""
    value = (getattr(settings, "AUDIT_PUBLIC_KEY", "") or "").strip()
    if value and not value.startswith("sha256:") and Path(value).is_file():
        value = Path(value).read_text().strip()
    return value


def matches_pin(public_hex: str, pin: str) -> bool:
    """Whether ``public_hex`` is the pinned key (given as the key itself or its fingerprint)."""
    if not pin or not public_hex:
        return False
    if pin.startswith("sha256:"):
        return fingerprint(public_hex) == pin.lower()
    return public_hex.lower() == pin.lower()


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()


# Domain separation: every signature covers one of these prefixes and then the canonical
# JSON of a statement the signer built itself (a head from its own chain read, an export
# after re-reading the events, the result of its own verification). There is no function
# that signs caller-supplied text, so a head signature cannot be obtained for an export's
# text or the other way round.
HEAD_DOMAIN = b"rag-audit-head/3\n"
EXPORT_DOMAIN = b"rag-audit-export/2\n"
STATUS_DOMAIN = b"rag-audit-status/1\n"
DOMAINS = (HEAD_DOMAIN, EXPORT_DOMAIN, STATUS_DOMAIN)


def sign_statement(domain: bytes, text: str, key: Ed25519PrivateKey | None = None) -> tuple[str, str]:
    """(signature hex, public key hex) over ``domain + text`` (signer only)."""
    if domain not in DOMAINS:
        raise ValueError("unknown signing domain")
    key = key or load_private_key()
    return key.sign(domain + text.encode()).hex(), public_key_hex(key.public_key())


def verify_statement(domain: bytes, text: str, signature_hex: str, public_hex: str) -> bool:
    return verify(domain + text.encode(), signature_hex, public_hex)


def verify(message: bytes, signature_hex: str, public_hex: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def local_public_key_hex() -> str:
    """The signer's own public key (signer process only)."""
    return public_key_hex(load_private_key().public_key())
