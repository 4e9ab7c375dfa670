"""A minimal Outlook .msg writer for tests (standard library only).

An Outlook message file is a Compound File Binary ([MS-CFB]: a little FAT file system in one
file) holding the message's MAPI properties as streams ([MS-OXMSG]):

    Root Entry
    ├── __properties_version1.0        32-byte header, then one 16-byte entry per property;
    │                                  fixed-size values (times, integers) are stored inline
    ├── __substg1.0_0037001F           PR_SUBJECT, UTF-16LE, no terminating NUL
    ├── __substg1.0_1000001F           PR_BODY
    ├── ...                            one stream per string property
    └── __recip_version1.0_#00000000   one storage per recipient, same layout, 8-byte header

The compound file written here is version 3 (512-byte sectors). Streams shorter than 4096
bytes live in the "mini stream" (64-byte mini sectors chained by the mini FAT); the mini
stream itself, the directory, the FAT and larger streams are chains of ordinary sectors:

    [header 512 B][FAT sectors][directory sectors][mini FAT sectors][mini stream][big streams]

Only what a test needs: no attachments, no named properties, no DIFAT (files up to ~7 MB).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field

# ---- MS-CFB constants ----------------------------------------------------------------------

SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SECTOR = 512
MINI_SECTOR = 64
MINI_STREAM_CUTOFF = 4096
DIR_ENTRY = 128

FREESECT = 0xFFFFFFFF
ENDOFCHAIN = 0xFFFFFFFE
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF

STORAGE, STREAM, ROOT = 1, 2, 5
RED, BLACK = 0, 1

# {00020D0B-0000-0000-C000-000000000046}: the class id Outlook gives a message's root storage
CLSID_MESSAGE = bytes.fromhex("0B0D020000000000C000000000000046")

# ---- MS-OXMSG / MAPI constants -------------------------------------------------------------

PT_LONG = 0x0003
PT_SYSTIME = 0x0040
PT_UNICODE = 0x001F

PR_MESSAGE_CLASS = 0x001A
PR_SUBJECT = 0x0037
PR_CLIENT_SUBMIT_TIME = 0x0039
PR_RECIPIENT_TYPE = 0x0C15
PR_SENDER_NAME = 0x0C1A
PR_SENDER_EMAIL_ADDRESS = 0x0C1F
PR_DISPLAY_TO = 0x0E04
PR_MESSAGE_DELIVERY_TIME = 0x0E06
PR_BODY = 0x1000
PR_DISPLAY_NAME = 0x3001
PR_ADDRTYPE = 0x3002
PR_EMAIL_ADDRESS = 0x3003
PR_SMTP_ADDRESS = 0x39FE

PROPATTR_READABLE_WRITABLE = 0x00000002 | 0x00000004
MAPI_TO = 1

DEFAULT_SENT = dt.datetime(2024, 3, 5, 9, 30, tzinfo=dt.timezone.utc)


# ---- the MSG layer: properties to streams -------------------------------------------------


@dataclass
class Node:
    """A directory entry: a storage (with children) or a stream (with data)."""

    name: str
    data: bytes = b""
    children: list[Node] = field(default_factory=list)
    kind: int = STREAM
    clsid: bytes = bytes(16)


def _filetime(when: dt.datetime) -> int:
    """100-nanosecond intervals since 1601-01-01 UTC (a Windows FILETIME)."""
    delta = when.astimezone(dt.timezone.utc) - dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _property_streams(header: bytes, strings: dict[int, str], fixed: dict[int, tuple[int, bytes]]) -> list[Node]:
    """The `__properties_version1.0` stream plus one `__substg1.0_` stream per string."""
    entries, streams = [], []
    for pid, text in strings.items():
        encoded = text.encode("utf-16-le")
        # variable-size entry: tag, flags, byte size *including* the 2-byte terminator, reserved
        entries.append(struct.pack("<IIII", (pid << 16) | PT_UNICODE, PROPATTR_READABLE_WRITABLE, len(encoded) + 2, 0))
        streams.append(Node(f"__substg1.0_{pid:04X}{PT_UNICODE:04X}", encoded))
    for pid, (ptype, value) in fixed.items():
        # fixed-size entry: tag, flags, the value itself padded to 8 bytes
        entries.append(struct.pack("<II", (pid << 16) | ptype, PROPATTR_READABLE_WRITABLE) + value.ljust(8, b"\0"))
    return [Node("__properties_version1.0", header + b"".join(entries)), *streams]


def build_msg(subject: str, body: str, sender_name: str, sender_email: str, to: str, *,
              sent: dt.datetime = DEFAULT_SENT) -> bytes:
    """The bytes of an Outlook .msg e-mail ("IPM.Note") with one "To" recipient, ``to``
    (an address, or ``"Name <address>"``)."""
    return build_cfb(message_tree(subject, body, sender_name, sender_email, to, sent=sent))


def message_tree(subject: str, body: str, sender_name: str, sender_email: str, to: str, *,
                 sent: dt.datetime = DEFAULT_SENT) -> Node:
    """The storage tree of that message, for a test that wants to damage it before
    ``build_cfb``."""
    to_name, _, to_address = to.rpartition("<")
    to_address = to_address.rstrip(">").strip() or to
    to_name = to_name.strip().strip('"') or to_address
    when = struct.pack("<Q", _filetime(sent))

    recipient = Node(
        "__recip_version1.0_#00000000",
        kind=STORAGE,
        children=_property_streams(
            bytes(8),  # recipient/attachment header: 8 reserved bytes
            {PR_DISPLAY_NAME: to_name, PR_ADDRTYPE: "SMTP", PR_EMAIL_ADDRESS: to_address, PR_SMTP_ADDRESS: to_address},
            {PR_RECIPIENT_TYPE: (PT_LONG, struct.pack("<I", MAPI_TO))},
        ),
    )
    # top-level message header: reserved 8, next recipient id, next attachment id,
    # recipient count, attachment count, reserved 8
    header = struct.pack("<8xIIII8x", 1, 0, 1, 0)
    message_streams = _property_streams(
        header,
        {
            PR_MESSAGE_CLASS: "IPM.Note",
            PR_SUBJECT: subject,
            PR_BODY: body,
            PR_SENDER_NAME: sender_name,
            PR_SENDER_EMAIL_ADDRESS: sender_email,
            PR_DISPLAY_TO: to_name,
        },
        {PR_CLIENT_SUBMIT_TIME: (PT_SYSTIME, when), PR_MESSAGE_DELIVERY_TIME: (PT_SYSTIME, when)},
    )
    return Node("Root Entry", kind=ROOT, clsid=CLSID_MESSAGE, children=[*message_streams, recipient])


# ---- the CFB layer: a tree of storages and streams to bytes -------------------------------


def _cfb_order(node: Node) -> tuple[int, str]:
    """Siblings are a red-black tree ordered by name length, then by upper-cased name."""
    return len(node.name), node.name.upper()


def _flatten(root: Node) -> list[Node]:
    """Every entry, root first (directory entry ids are positions in this list)."""
    out, todo = [], [root]
    while todo:
        node = todo.pop(0)
        out.append(node)
        todo.extend(node.children)
    return out


def _sibling_tree(children: list[Node], ids: dict[int, int]) -> tuple[int, dict[int, tuple[int, int, int]]]:
    """A balanced binary search tree over ``children``: (root id, {id: (left, right, colour)}).

    Built by halving the sorted list, so every empty link is on the last two levels; making
    the nodes of the deepest level red (and the rest black) is then a valid red-black tree."""
    ordered = sorted(children, key=_cfb_order)
    links: dict[int, tuple[int, int, int]] = {}
    depths: dict[int, int] = {}

    def build(lo: int, hi: int, depth: int) -> int:
        if lo >= hi:
            return NOSTREAM
        mid = (lo + hi) // 2
        me = ids[id(ordered[mid])]
        depths[me] = depth
        links[me] = (build(lo, mid, depth + 1), build(mid + 1, hi, depth + 1), BLACK)
        return me

    top = build(0, len(ordered), 0)
    deepest = max(depths.values(), default=0)
    for me, depth in depths.items():
        if depth == deepest > 0:
            links[me] = (*links[me][:2], RED)
    return top, links


def _pad(data: bytes, size: int) -> bytes:
    return data + bytes(-len(data) % size)


def _chain(table: list[int], start: int, count: int) -> None:
    """Mark ``count`` consecutive sectors from ``start`` as one chain in a FAT or mini FAT."""
    for i in range(start, start + count - 1):
        table[i] = i + 1
    table[start + count - 1] = ENDOFCHAIN


def _ceil(n: int, size: int) -> int:
    return -(-n // size)


def build_cfb(root: Node) -> bytes:
    """Write a version-3 compound file for the storage tree under ``root``."""
    entries = _flatten(root)
    ids = {id(node): i for i, node in enumerate(entries)}

    # Place stream data: small streams in the mini stream, large ones in ordinary sectors.
    mini_stream, big_streams = bytearray(), []  # big_streams: (entry id, data)
    start = {}  # entry id -> first (mini) sector
    mini_fat: list[int] = []
    for i, node in enumerate(entries):
        if node.kind != STREAM:
            continue
        if not node.data:
            start[i] = ENDOFCHAIN
        elif len(node.data) < MINI_STREAM_CUTOFF:
            first, count = len(mini_stream) // MINI_SECTOR, _ceil(len(node.data), MINI_SECTOR)
            mini_fat.extend([FREESECT] * count)
            _chain(mini_fat, first, count)
            start[i] = first
            mini_stream += _pad(node.data, MINI_SECTOR)
        else:
            big_streams.append((i, node.data))

    n_dir = _ceil(len(entries) * DIR_ENTRY, SECTOR)
    n_minifat = _ceil(len(mini_fat) * 4, SECTOR)
    n_ministream = _ceil(len(mini_stream), SECTOR)
    n_big = sum(_ceil(len(data), SECTOR) for _, data in big_streams)
    n_data = n_dir + n_minifat + n_ministream + n_big
    n_fat = 1
    while n_fat * (SECTOR // 4) < n_fat + n_data:  # the FAT also maps its own sectors
        n_fat += 1
    if n_fat > 109:
        raise ValueError("too large for a compound file without DIFAT sectors")

    # Sector numbers, in file order.
    fat = [FREESECT] * (n_fat * SECTOR // 4)
    for s in range(n_fat):
        fat[s] = FATSECT
    dir_start = n_fat
    _chain(fat, dir_start, n_dir)
    minifat_start = dir_start + n_dir
    if n_minifat:
        _chain(fat, minifat_start, n_minifat)
    ministream_start = minifat_start + n_minifat
    if n_ministream:
        _chain(fat, ministream_start, n_ministream)
    next_sector = ministream_start + n_ministream
    big_data = bytearray()
    for i, data in big_streams:
        count = _ceil(len(data), SECTOR)
        _chain(fat, next_sector, count)
        start[i] = next_sector
        next_sector += count
        big_data += _pad(data, SECTOR)

    # The directory: one 128-byte entry per node, padded with unused entries.
    tree = {}  # entry id -> (left, right, colour)
    child = {}  # storage entry id -> root of its children's tree
    for i, node in enumerate(entries):
        if node.kind != STREAM:
            child[i], links = _sibling_tree(node.children, ids)
            tree.update(links)
    directory = bytearray()
    for i, node in enumerate(entries):
        name = node.name.encode("utf-16-le")
        if len(name) > 62:
            raise ValueError(f"name too long for a compound file: {node.name!r}")
        left, right, colour = tree.get(i, (NOSTREAM, NOSTREAM, BLACK))
        if node.kind == ROOT:
            first, size = (ministream_start if mini_stream else ENDOFCHAIN), len(mini_stream)
        elif node.kind == STORAGE:
            first, size = 0, 0
        else:
            first, size = start[i], len(node.data)
        directory += struct.pack(
            "<64sHBBIII16sIQQIQ",
            name, len(name) + 2, node.kind, colour, left, right, child.get(i, NOSTREAM),
            node.clsid, 0, 0, 0, first, size,
        )
    unused = struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, bytes(16), 0, 0, 0, 0, 0)
    while len(directory) % SECTOR:
        directory += unused

    difat = list(range(n_fat)) + [FREESECT] * (109 - n_fat)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I",
        SIGNATURE, bytes(16),
        0x003E, 0x0003,  # minor, major version
        0xFFFE,  # byte order mark: little-endian
        9, 6,  # sector shift (512), mini sector shift (64)
        bytes(6),
        0,  # number of directory sectors: always 0 in version 3
        n_fat, dir_start,
        0,  # transaction signature
        MINI_STREAM_CUTOFF,
        minifat_start if n_minifat else ENDOFCHAIN, n_minifat,
        ENDOFCHAIN, 0,  # first DIFAT sector, number of DIFAT sectors
        *difat,
    )
    assert len(header) == SECTOR

    mini_fat += [FREESECT] * (n_minifat * SECTOR // 4 - len(mini_fat))
    return b"".join([
        header,
        struct.pack(f"<{len(fat)}I", *fat),
        bytes(directory),
        struct.pack(f"<{len(mini_fat)}I", *mini_fat),
        _pad(bytes(mini_stream), SECTOR),
        bytes(big_data),
    ])
