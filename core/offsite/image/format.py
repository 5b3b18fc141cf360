"""The OFI byte layout: constants, metadata, index entries, file names.

docs/FORMAT.md is the specification; this module is its one implementation.
All integers are little-endian.

::

    header   magic "OFIMAGE\\0", u16 major, u16 minor, u32 metadata length, metadata (UTF-8 JSON)
    payloads stored blocks back to back, in block order
    index    one 56-byte entry per block present, sorted by block number: u64 block,
             u64 offset, u32 stored length, u32 flags, 32-byte SHA-256 of the stored bytes
    footer   u64 index offset, u64 entry count, 32-byte SHA-256, magic "OFIEND\\0\\0"

The footer's SHA-256 covers the header, the index and the footer's two
counts; the index's per-block SHA-256 covers every payload byte, and the
payloads must tile the space between header and index exactly. So every byte
before the footer is covered, and a consolidation can copy payloads verbatim
without hashing them again.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import struct
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

import attrs

from offsite.errors import CorruptImage, UsageError

MAGIC = b"OFIMAGE\x00"
FOOTER_MAGIC = b"OFIEND\x00\x00"
#: Readers refuse another major version; a newer minor only adds metadata keys.
VERSION = (1, 0)

HEADER = struct.Struct("<8sHHI")
ENTRY = struct.Struct("<QQII32s")
FOOTER = struct.Struct("<QQ32s8s")

#: Flags of an index entry. Any other bit set is corruption (or a future major).
FLAG_ZERO = 0x1
FLAG_ZSTD = 0x2
KNOWN_FLAGS = FLAG_ZERO | FLAG_ZSTD
NO_CHECKSUM = bytes(32)

#: Limits a reader enforces before trusting any length in a file.
MAX_METADATA = 1 << 20
MIN_BLOCK_SIZE = 512
MAX_BLOCK_SIZE = 64 << 20
MAX_VOLUME_SIZE = 1 << 60
DEFAULT_BLOCK_SIZE = 1 << 20

Kind = Literal["full", "incremental"]
Compression = Literal["zstd", "none"]
COMPRESSIONS: tuple[Compression, ...] = ("zstd", "none")

LABEL = re.compile(r"[^/\\\x00-\x1f]+\Z")
#: A label's longest UTF-8 form: its images' names, and the hidden names they
#: are written (``.NAME.tmp-PID``) and uploaded (``.NAME.offsite-partial``)
#: under, must fit the 255 bytes file systems and servers hold for a name.
MAX_LABEL_BYTES = 200
NAME = re.compile(r"(?P<label>.+)-b(?P<gen>\d{3,})(?:-i(?P<seq>\d{3,}))?\.ofi\Z")


class Entry(NamedTuple):
    """One index entry: where block ``block``'s stored bytes are, and how."""

    block: int
    offset: int
    length: int
    flags: int
    checksum: bytes

    @property
    def zero(self) -> bool:
        return bool(self.flags & FLAG_ZERO)

    def pack(self) -> bytes:
        return ENTRY.pack(*self)


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def new_id() -> str:
    return str(uuid.uuid4())


def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
             file: object) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(
            k.__name__ for k in kind)
        raise CorruptImage(f"metadata key '{key}' must be {expected}, found {value!r}",
                           file=file)
    return value


@attrs.frozen
class Metadata:
    """The header's JSON metadata (docs/FORMAT.md lists each key)."""

    kind: Kind
    set_id: str
    label: str
    generation: int
    seq_first: int
    seq_last: int
    state: str
    parent_state: str | None
    block_size: int
    volume_size: int
    compression: Compression
    created: str = attrs.field(factory=utc_now)
    #: Keys written by a newer minor version, kept as they are.
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def block_count(self) -> int:
        return -(-self.volume_size // self.block_size)

    def raw_length(self, block: int) -> int:
        """The bytes block ``block`` holds (the last block may be short)."""
        return min(self.block_size, self.volume_size - block * self.block_size)

    @property
    def created_at(self) -> float:
        """``created`` as epoch seconds (0.0 if it does not parse)."""
        try:
            return datetime.datetime.fromisoformat(self.created).timestamp()
        except ValueError:
            return 0.0

    @property
    def name(self) -> str:
        """The file name this image should have (:func:`image_name`)."""
        return image_name(self.label, self.generation,
                          self.seq_last if self.kind == "incremental" else None)

    def to_dict(self) -> dict[str, Any]:
        """The metadata as its JSON keys (newer minor versions' keys included)."""
        data = attrs.asdict(self, filter=lambda a, _v: a.name != "extra")
        data.update(self.extra)
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes, file: object = "?") -> Metadata:
        """Parse and validate; every problem names the key.

        :raises CorruptImage: not JSON, a key missing or of the wrong type,
            or values that contradict each other.
        """
        try:
            data = json.loads(raw.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptImage(f"metadata is not UTF-8 JSON: {exc}", file=file) from None
        if not isinstance(data, dict):
            raise CorruptImage("metadata is not a JSON object", file=file)
        known = {a.name for a in attrs.fields(cls)} - {"extra"}
        parent = data.get("parent_state")
        if parent is not None and not isinstance(parent, str):
            raise CorruptImage(f"metadata key 'parent_state' must be a string or null, "
                               f"found {parent!r}", file=file)
        meta = cls(
            kind=_require(data, "kind", str, file),
            set_id=_require(data, "set_id", str, file),
            label=_require(data, "label", str, file),
            generation=_require(data, "generation", int, file),
            seq_first=_require(data, "seq_first", int, file),
            seq_last=_require(data, "seq_last", int, file),
            state=_require(data, "state", str, file),
            parent_state=parent,
            block_size=_require(data, "block_size", int, file),
            volume_size=_require(data, "volume_size", int, file),
            compression=_require(data, "compression", str, file),
            created=_require(data, "created", str, file),
            extra={k: v for k, v in data.items() if k not in known},
        )
        meta.validate(file)
        return meta

    def validate(self, file: object = "?") -> None:
        """Check that the values agree with each other.

        :raises CorruptImage: naming the key that is wrong.
        """
        def bad(key: str, why: str) -> CorruptImage:
            return CorruptImage(f"metadata key '{key}' {why}", file=file)

        if self.kind not in ("full", "incremental"):
            raise bad("kind", f"must be 'full' or 'incremental', found {self.kind!r}")
        if self.compression not in COMPRESSIONS:
            raise bad("compression", f"must be one of {COMPRESSIONS}, found {self.compression!r}")
        bs = self.block_size
        if not (MIN_BLOCK_SIZE <= bs <= MAX_BLOCK_SIZE and bs & (bs - 1) == 0):
            raise bad("block_size", f"must be a power of two from {MIN_BLOCK_SIZE} to "
                      f"{MAX_BLOCK_SIZE}, found {bs}")
        if not 0 <= self.volume_size <= MAX_VOLUME_SIZE:
            raise bad("volume_size", f"is out of range: {self.volume_size}")
        if self.generation < 1:
            raise bad("generation", f"must be 1 or more, found {self.generation}")
        if label_problem(self.label):
            raise bad("label", f"must be 1-{MAX_LABEL_BYTES} bytes of UTF-8 without '/', '\\' "
                      "or control characters")
        if self.kind == "full":
            if (self.seq_first, self.seq_last) != (0, 0):
                raise bad("seq_first", "must be 0 (and seq_last 0) for a full image")
            if self.parent_state is not None:
                raise bad("parent_state", "must be null for a full image")
        else:
            if not 1 <= self.seq_first <= self.seq_last:
                raise bad("seq_first", f"must be 1 <= seq_first <= seq_last, found "
                          f"{self.seq_first}..{self.seq_last}")
            if not self.parent_state:
                raise bad("parent_state", "must name the state an incremental applies to")


def label_problem(label: str) -> str | None:
    """What is wrong with ``label`` as an image label, or None."""
    try:
        size = len(label.encode())
    except UnicodeEncodeError:
        return "is not valid Unicode (a file name in another encoding?)"
    if size > MAX_LABEL_BYTES:
        return (f"is {size} bytes of UTF-8, and at most {MAX_LABEL_BYTES} fit in its images' "
                "file names")
    if not LABEL.match(label):
        return "must not be empty, nor hold '/', '\\' or control characters"
    return None


def check_label(label: str) -> None:
    """Refuse a label no image could be named after.

    :raises UsageError: naming the label and the rule, before anything is written.
    """
    if problem := label_problem(label):
        raise UsageError(f"the image label (--label) {label!r} {problem}",
                         fix="choose a shorter label, of any characters but '/' and '\\'")


def image_name(label: str, generation: int, seq: int | None = None) -> str:
    """``vol-b001.ofi`` for a full, ``vol-b001-i003.ofi`` for incremental 3."""
    base = f"{label}-b{generation:03d}"
    return f"{base}.ofi" if seq is None else f"{base}-i{seq:03d}.ofi"


def header_bytes(meta: Metadata) -> bytes:
    raw = meta.to_json()
    if len(raw) > MAX_METADATA:
        raise ValueError(f"metadata of {len(raw)} bytes exceeds {MAX_METADATA}")
    return HEADER.pack(MAGIC, *VERSION, len(raw)) + raw


def footer_digest(header: bytes, index: Iterable[bytes], index_offset: int, count: int) -> bytes:
    """The footer's SHA-256: header, index entries, then the two counts."""
    digest = hashlib.sha256(header)
    for chunk in index:
        digest.update(chunk)
    digest.update(struct.pack("<QQ", index_offset, count))
    return digest.digest()


def footer_bytes(index_offset: int, count: int, digest: bytes) -> bytes:
    return FOOTER.pack(index_offset, count, digest, FOOTER_MAGIC)
