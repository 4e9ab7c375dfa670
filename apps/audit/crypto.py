"""Envelope encryption of audit content: pure functions over the ``cryptography`` package.

* A *data key* (32 random bytes) is stored wrapped: ``AESGCM(master).encrypt(nonce, key,
  aad=b"scope|subject")``, so a wrapped key cannot be moved to another subject.
* A content field is sealed under one or more data keys. With several, the field key is
  HKDF-SHA256 over their concatenation (in key-id order): every one of them is needed to
  read it, so destroying ANY of them (the asker's or one shown document's) makes it
  unreadable.
* A sealed field is ``{"enc": 1, "keys": [ids], "n": nonce_b64, "c": ciphertext_b64}``; the
  key ids are the AEAD's associated data, so they cannot be edited to point elsewhere.

Nothing here touches the database or settings (tests/test_audit_crypto.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_VERSION = 1
_HKDF_INFO = b"rag-audit-field-key/1"


class ContentUnreadable(Exception):
    """A sealed field cannot be opened: a key is destroyed (erased) or the data was altered."""

    def __init__(self, message: str, *, missing: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.missing = list(missing)


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def create_key_file(path) -> None:
    """Write a new key (hex) to ``path``, mode 0600, in a 0700 folder; refuses to overwrite one.

    Needs no Django: the embedded stack creates the master key before any Django process runs."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key().hex() + "\n")


def master_key_id(master: bytes) -> str:
    """Which master key wrapped a data key (sha256 prefix; never the key itself)."""
    return hashlib.sha256(b"rag-audit-master|" + master).hexdigest()[:16]


def _key_aad(scope: str, subject_id: int) -> bytes:
    return f"{scope}|{subject_id}".encode()


def wrap_key(master: bytes, key: bytes, *, scope: str, subject_id: int) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, key, _key_aad(scope, subject_id))


def unwrap_key(master: bytes, wrapped: bytes, *, scope: str, subject_id: int) -> bytes:
    """Raises ContentUnreadable for the wrong master key, subject or an altered blob."""
    wrapped = bytes(wrapped)
    try:
        return AESGCM(master).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _key_aad(scope, subject_id))
    except (InvalidTag, ValueError):
        raise ContentUnreadable(f"data key for {scope} {subject_id} does not unwrap with this master key") from None


def field_key(keys: Mapping[int, bytes], key_ids: Sequence[int]) -> bytes:
    """The key a field is sealed with: the data key itself, or HKDF over all of them."""
    ordered = sorted(set(key_ids))
    missing = [i for i in ordered if i not in keys]
    if missing:
        raise ContentUnreadable(f"data key(s) {missing} destroyed", missing=missing)
    if len(ordered) == 1:
        return keys[ordered[0]]
    material = b"".join(keys[i] for i in ordered)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_HKDF_INFO).derive(material)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _field_aad(key_ids: Sequence[int]) -> bytes:
    return ("rag-audit-field|" + ",".join(str(i) for i in key_ids)).encode()


def seal(value: Any, keys: Mapping[int, bytes], key_ids: Sequence[int]) -> dict[str, Any]:
    """``value`` (any JSON value) sealed under every key in ``key_ids``."""
    ordered = sorted(set(key_ids))
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    cipher = AESGCM(field_key(keys, ordered)).encrypt(nonce, plain, _field_aad(ordered))
    return {"enc": SEALED_VERSION, "keys": ordered, "n": _b64(nonce), "c": _b64(cipher)}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("enc") == SEALED_VERSION and "c" in value and "keys" in value


def open_sealed(sealed: Mapping[str, Any], keys: Mapping[int, bytes]) -> Any:
    """The value, or ContentUnreadable (a key is gone, or the field was altered)."""
    ids = [int(i) for i in sealed["keys"]]
    key = field_key(keys, ids)
    try:
        plain = AESGCM(key).decrypt(base64.b64decode(sealed["n"]), base64.b64decode(sealed["c"]), _field_aad(ids))
    except (InvalidTag, ValueError):
        raise ContentUnreadable("sealed field does not decrypt (altered)") from None
    return json.loads(plain)
