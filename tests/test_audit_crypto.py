"""The envelope encryption of audit content on its own (apps.audit.crypto): no database."""

import base64

import pytest

from apps.audit import crypto


def test_a_wrapped_key_unwraps_only_with_its_master_key_and_subject():
    master, key = crypto.new_key(), crypto.new_key()
    wrapped = crypto.wrap_key(master, key, scope="user", subject_id=7)
    assert key not in wrapped and crypto.unwrap_key(master, wrapped, scope="user", subject_id=7) == key
    with pytest.raises(crypto.ContentUnreadable):
        crypto.unwrap_key(crypto.new_key(), wrapped, scope="user", subject_id=7)  # another master key
    with pytest.raises(crypto.ContentUnreadable):
        crypto.unwrap_key(master, wrapped, scope="user", subject_id=8)  # moved to another person
    with pytest.raises(crypto.ContentUnreadable):
        crypto.unwrap_key(master, wrapped, scope="document", subject_id=7)
    assert crypto.master_key_id(master) == crypto.master_key_id(master) != crypto.master_key_id(key)


def test_a_field_sealed_under_several_keys_needs_every_one_of_them():
    keys = {1: crypto.new_key(), 2: crypto.new_key(), 3: crypto.new_key()}
    sealed = crypto.seal("Payments above 10,000 EUR need two approvals [1].", keys, [3, 1, 2])
    assert sealed["keys"] == [1, 2, 3] and crypto.is_sealed(sealed) and "EUR" not in str(sealed)
    assert crypto.open_sealed(sealed, keys) == "Payments above 10,000 EUR need two approvals [1]."
    for destroyed in keys:  # the asker's key or any one shown document's: unreadable
        rest = {k: v for k, v in keys.items() if k != destroyed}
        with pytest.raises(crypto.ContentUnreadable) as error:
            crypto.open_sealed(sealed, rest)
        assert error.value.missing == [destroyed]
    # One key: the data key itself; the derived key of several is none of them.
    assert crypto.field_key(keys, [2]) == keys[2]
    assert crypto.field_key(keys, [1, 2]) not in keys.values()
    assert crypto.field_key(keys, [2, 1]) == crypto.field_key(keys, [1, 2])


def test_any_json_value_round_trips_and_each_seal_is_fresh():
    keys = {5: crypto.new_key()}
    value = {"sentence": "Zoë’s badge — 24 h", "scores": [0.5, 1], "ok": True}
    first, second = crypto.seal(value, keys, [5]), crypto.seal(value, keys, [5])
    assert first["n"] != second["n"] and first["c"] != second["c"]
    assert crypto.open_sealed(first, keys) == value == crypto.open_sealed(second, keys)


def test_tampering_with_a_sealed_field_is_an_error_not_garbage():
    keys = {1: crypto.new_key(), 2: crypto.new_key()}
    sealed = crypto.seal("the vault code changes every month", keys, [1, 2])
    cipher = bytearray(base64.b64decode(sealed["c"]))
    cipher[0] ^= 1
    for altered in ({**sealed, "c": base64.b64encode(bytes(cipher)).decode()},
                    {**sealed, "keys": [1]},  # key ids are authenticated: cannot point elsewhere
                    {**sealed, "n": base64.b64encode(b"\0" * 12).decode()}):
        with pytest.raises(crypto.ContentUnreadable):
            crypto.open_sealed(altered, keys)
    with pytest.raises(crypto.ContentUnreadable):
        crypto.unwrap_key(keys[1], b"\0" * 40, scope="user", subject_id=1)


def test_the_master_key_file_is_made_once_and_refused_when_missing_or_too_open(tmp_path, settings):
    from django.core.exceptions import ImproperlyConfigured

    from apps.audit.refusals import refuse_without_master_key
    from apps.audit.checks import check_master_key_permissions, check_master_key_present
    from apps.audit.keys import MasterKeyUnavailable, generate_master_key_file, load_master_key, master_key_problem

    path = tmp_path / "keys" / "audit-master.key"
    settings.AUDIT_MASTER_KEY_FILE = str(path)
    assert "is missing" in master_key_problem() and "audit_master_key --create" in master_key_problem()
    assert [e.id for e in check_master_key_present()] == ["rag.E041"]
    with pytest.raises(ImproperlyConfigured, match="is missing"):
        refuse_without_master_key()
    generate_master_key_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and len(load_master_key()) == 32
    assert master_key_problem() == "" and check_master_key_permissions() == [] and check_master_key_present() == []
    with pytest.raises(FileExistsError):
        generate_master_key_file(path)  # never replaced: the sealed content would be lost
    path.chmod(0o640)
    assert [e.id for e in check_master_key_permissions()] == ["rag.E040"]
    with pytest.raises(MasterKeyUnavailable, match="chmod 600"):
        load_master_key()
