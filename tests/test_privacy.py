"""Personal-data detection (apps.privacy): the real Presidio engine on the packaged spaCy
model, offline; recall on the labelled set; masking with typed placeholders."""

import socket

import pytest

from apps.privacy import detection, kinds, recognizers
from apps.privacy.masking import mask_content, mask_text
from bench.pii import evaluate, load_labelled

EMAIL_AND_URL_TEXT = (
    "Write to jane.doe@example.co.uk or j.smith@mailbox.org, or see https://intranet.example.com/hr "
    "and www.example.org/policies; the helpdesk is helpdesk@support.example.net."
)


def _loopback(host) -> bool:
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    return name in {"", "localhost", "127.0.0.1", "::1"} or name.startswith("127.")


@pytest.fixture
def no_network(monkeypatch):
    """Any name lookup or connection to a non-loopback host raises, and is recorded."""
    attempts: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if not _loopback(host):
            attempts.append(f"getaddrinfo {host}")
            raise OSError(f"network lookup of {host} during a privacy test")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family != socket.AF_UNIX and not _loopback(host):
            attempts.append(f"connect {address}")
            raise OSError(f"connection to {address} during a privacy test")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def test_the_guard_sees_tldextracts_default_download(no_network):
    """The fixture is not vacuous: tldextract's default extractor does try publicsuffix.org."""
    import tldextract

    fresh = tldextract.TLDExtract(cache_dir=None)  # the library default: fetch the list first
    fresh("jane.doe@example.co.uk")
    assert any("publicsuffix" in a for a in no_network), no_network


def test_detection_of_email_and_url_text_makes_no_network_call(no_network, monkeypatch):
    # A fresh engine and a fresh suffix-list extractor, built and used under the guard.
    monkeypatch.setattr(detection, "_engine", None)
    recognizers.recognizers.cache_clear()
    monkeypatch.setattr(recognizers.OFFLINE_TLD_EXTRACT, "_extractor", None)
    found = detection.find(EMAIL_AND_URL_TEXT)
    assert [EMAIL_AND_URL_TEXT[f.start:f.end] for f in found if f.entity_type == "EMAIL_ADDRESS"] == [
        "jane.doe@example.co.uk", "j.smith@mailbox.org", "helpdesk@support.example.net"]
    import tldextract

    assert tldextract.extract("https://intranet.example.com/hr").suffix == "com"  # the module default, offline too
    phones = detection.find("Call +44 20 7123 4567 or (212) 555-0187 about the account.")
    assert [f.entity_type for f in phones] == ["PHONE_NUMBER", "PHONE_NUMBER"]
    assert "<EMAIL_ADDRESS>" in mask_text(EMAIL_AND_URL_TEXT + " Card 4111 1111 1111 1111.")
    assert no_network == []
    recognizers.recognizers.cache_clear()


def test_counts_by_type_without_values():
    text = ("Patient Margaret Okafor, NHS number 943 476 5919, born 14 March 1952; pay GB82 WEST 1234 5698 7654 32 "
            "from card 4111 1111 1111 1111; e-mail m.okafor@example.com; SSN 536-22-8145.")
    counts = detection.count(text)
    assert counts == {"PERSON": 1, "UK_NHS": 1, "DATE_OF_BIRTH": 1, "IBAN_CODE": 1, "CREDIT_CARD": 1,
                      "EMAIL_ADDRESS": 1, "US_SSN": 1}, counts
    assert kinds.describe({"EMAIL_ADDRESS": 3, "IBAN_CODE": 1}) == "3 e-mail addresses, 1 IBAN"


def test_dates_are_births_only_with_birth_context_and_checksums_matter():
    assert detection.count("The contract was signed on 14 March 2024 and renewed on 01/02/2025.") == {}
    assert detection.count("Date of birth: 01/02/1985.") == {"DATE_OF_BIRTH": 1}
    assert detection.count("Order 1234 5678 9012 3456 ships Friday.") == {}  # fails the Luhn check
    assert detection.count("Card 4111 1111 1111 1111 was blocked.") == {"CREDIT_CARD": 1}


def test_masking_replaces_values_with_typed_placeholders():
    assert mask_text("Mail jane.doe@example.com about IBAN DE89 3704 0044 0532 0130 00.") == \
        "Mail <EMAIL_ADDRESS> about IBAN <IBAN_CODE>."
    payload = {"question": "Is jane.doe@example.com on file?", "model": "qwen", "retrieved": [
        {"n": 1, "chunk_id": 5, "text": "Contact jane.doe@example.com.", "document_sha256": "ab" * 32}],
        "evidence": [{"n": 1, "sentence": "Contact jane.doe@example.com.", "score": 0.9}]}
    masked = mask_content(payload)
    assert masked["question"] == "Is <EMAIL_ADDRESS> on file?"
    assert masked["retrieved"][0]["text"] == "Contact <EMAIL_ADDRESS>."
    assert masked["evidence"][0]["sentence"] == "Contact <EMAIL_ADDRESS>."
    assert masked["model"] == "qwen" and masked["retrieved"][0]["document_sha256"] == "ab" * 32
    assert payload["question"] == "Is jane.doe@example.com on file?"  # a copy


def test_labelled_set_recall_per_type():
    rows = load_labelled()
    assert sum(len(r["spans"]) for r in rows) >= 100
    table = evaluate(rows)
    errors = table.pop("_errors")
    for kind in ("EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "CREDIT_CARD", "US_SSN", "UK_NHS"):
        assert table[kind]["gold"] >= 8, kind
        assert table[kind]["recall"] >= 0.9, (kind, table[kind], [e for e in errors if kind in e])
