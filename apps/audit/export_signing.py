"""The signer's half of an export: what it signs, it re-read itself.

Web builds the files (it alone can open sealed content and mask it) and sends the signer
the export request (when, by whom, the filters, the files' sha256) and the exported
sequences as ranges. The signer first signs a head over its own verified chain read (which
stops on any discrepancy, apps.audit.alarms), then reads the events in those ranges from
the database and signs a statement with the count, the range, the sha256 of their
``sequence|hash`` lines (``events_sha256``) and the covering head, over
signing.EXPORT_DOMAIN. ``verify_export`` recomputes ``events_sha256`` from the file's lines,
and each line's hash from its content, so a fabricated event cannot be in a verifying export.

What the signer cannot check, and says so by name (``attested_by_web``): the files' sha256
and the readable (opened, masked) text, which only web can produce; they are as
trustworthy as the web process.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils import timezone

from apps.audit import signing
from apps.audit.chain import canonical_json
from apps.audit.models import AuditEvent

FORMAT = "rag-audit-export/2"
REQUEST_FIELDS = ("exported_at", "exported_by", "filters", "files")
MAX_RANGES = 200_000


class ExportRefused(ValueError):
    """The request does not describe events the database holds: nothing signed."""


def line_digest() -> Any:
    return hashlib.sha256()


def digest_add(digest: Any, sequence: int, hash_value: str) -> None:
    digest.update(f"{sequence}|{hash_value}\n".encode())


def _checked_ranges(ranges: Any) -> list[tuple[int, int]]:
    if not isinstance(ranges, list) or len(ranges) > MAX_RANGES:
        raise ExportRefused("ranges must be a list of [first, last] sequence pairs")
    checked, last = [], 0
    for item in ranges:
        if (not isinstance(item, list) or len(item) != 2 or not all(type(v) is int for v in item)
                or not last < item[0] <= item[1]):
            raise ExportRefused("ranges must be ascending, disjoint [first, last] pairs of sequences")
        checked.append((item[0], item[1]))
        last = item[1]
    return checked


def sign_export(request: dict[str, Any], ranges: list[list[int]]) -> tuple[str, str, str]:
    """(statement text, signature hex, public key hex); ExportRefused, TrailDiscrepancy or
    ChainDoesNotVerify with nothing signed."""
    from apps.audit.checkpoints import audit_checkpoint_create, own_latest_head

    if not isinstance(request, dict) or set(request) - set(REQUEST_FIELDS):
        raise ExportRefused(f"an export request holds only {', '.join(REQUEST_FIELDS)}")
    checked = _checked_ranges(ranges)
    audit_checkpoint_create()  # the chain read and verified by the signer, up to now
    public_hex = signing.local_public_key_hex()
    head = own_latest_head(public_hex)
    digest, count = line_digest(), 0
    for first, last in checked:
        rows = AuditEvent.objects.filter(sequence__gte=first, sequence__lte=last).order_by("sequence")
        for sequence, hash_value in rows.values_list("sequence", "hash").iterator(chunk_size=5000):
            digest_add(digest, sequence, hash_value)
            count += 1
    if count != sum(last - first + 1 for first, last in checked):
        raise ExportRefused("some of the events to export are not in the database")
    if checked and (head is None or checked[-1][1] > head.last_sequence):
        raise ExportRefused("the events to export are not covered by a signed head")
    statement = {
        **request,
        "format": FORMAT,
        "attested_by_web": sorted(request),
        "count": count,
        "first_sequence": checked[0][0] if checked else None,
        "last_sequence": checked[-1][1] if checked else None,
        "events_sha256": digest.hexdigest(),
        "covering_head": ({"number": head.number, "digest": head.digest, "last_sequence": head.last_sequence}
                          if head else None),
        "signed_at": timezone.now().isoformat(timespec="microseconds"),
    }
    text = canonical_json(statement)
    signature, public = signing.sign_statement(signing.EXPORT_DOMAIN, text)
    return text, signature, public
