"""Evidence rules, pure: what a file is (from its bytes), which kinds accept it, how big it may
be, how many a complaint may carry, and what name it keeps.

Media types are read from the content's leading bytes with the small table of signatures
below, not a magic library: the platform accepts only these few formats, so an allowlist we
can read in one screen is the whole rule, it never guesses (no confidence scores, no
extension fallback), and it cannot change under us with a dependency's database. A file whose
bytes match no row is refused, whatever its name or declared type says.
"""

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

MIB = 1024 * 1024
# Enough leading bytes for every signature below, ISO BMFF's brand list included.
SNIFF_BYTES = 256
MAX_FILENAME_CHARS = 120


class EvidenceKind(StrEnum):
    """What the customer says a file shows."""

    PHOTO = "photo"
    VIDEO = "video"
    SCREENSHOT = "screenshot"
    RECEIPT = "receipt"
    CHAT_LOG = "chat_log"


class MediaType(StrEnum):
    """The formats evidence may come in (IANA media types)."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    GIF = "image/gif"
    WEBP = "image/webp"
    HEIC = "image/heic"
    HEIF = "image/heif"
    MP4 = "video/mp4"
    QUICKTIME = "video/quicktime"
    PDF = "application/pdf"


class SizeClass(StrEnum):
    """Media types that share a size limit."""

    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"


SIZE_CLASS: Mapping[MediaType, SizeClass] = {
    MediaType.JPEG: SizeClass.IMAGE,
    MediaType.PNG: SizeClass.IMAGE,
    MediaType.GIF: SizeClass.IMAGE,
    MediaType.WEBP: SizeClass.IMAGE,
    MediaType.HEIC: SizeClass.IMAGE,
    MediaType.HEIF: SizeClass.IMAGE,
    MediaType.MP4: SizeClass.VIDEO,
    MediaType.QUICKTIME: SizeClass.VIDEO,
    MediaType.PDF: SizeClass.DOCUMENT,
}

# What a downloaded file is named after (`evidence-<id>.<extension>`).
FILE_EXTENSIONS: Mapping[MediaType, str] = {
    MediaType.JPEG: "jpg",
    MediaType.PNG: "png",
    MediaType.GIF: "gif",
    MediaType.WEBP: "webp",
    MediaType.HEIC: "heic",
    MediaType.HEIF: "heif",
    MediaType.MP4: "mp4",
    MediaType.QUICKTIME: "mov",
    MediaType.PDF: "pdf",
}

_STILL_IMAGES = frozenset(
    {MediaType.JPEG, MediaType.PNG, MediaType.WEBP, MediaType.HEIC, MediaType.HEIF}
)
# A chat log is a screenshot of the conversation or the shop's PDF export of it; plain text
# has no signature to check, so it is not taken.
ALLOWED_MEDIA_TYPES: Mapping[EvidenceKind, frozenset[MediaType]] = {
    EvidenceKind.PHOTO: _STILL_IMAGES,
    EvidenceKind.VIDEO: frozenset({MediaType.MP4, MediaType.QUICKTIME}),
    EvidenceKind.SCREENSHOT: _STILL_IMAGES | {MediaType.GIF},
    EvidenceKind.RECEIPT: _STILL_IMAGES | {MediaType.PDF},
    EvidenceKind.CHAT_LOG: _STILL_IMAGES | {MediaType.PDF},
}


@dataclass(frozen=True)
class Signature:
    """Bytes a format starts with: `magic` at `offset`, and `also` at `also_offset` if set."""

    media_type: MediaType
    magic: bytes
    offset: int = 0
    also: bytes = b""
    also_offset: int = 0

    def matches(self, head: bytes) -> bool:
        """Whether the leading bytes carry this signature."""
        if head[self.offset : self.offset + len(self.magic)] != self.magic:
            return False
        if not self.also:
            return True
        return head[self.also_offset : self.also_offset + len(self.also)] == self.also


SIGNATURES: tuple[Signature, ...] = (
    Signature(MediaType.JPEG, b"\xff\xd8\xff"),
    Signature(MediaType.PNG, b"\x89PNG\r\n\x1a\n"),
    Signature(MediaType.GIF, b"GIF87a"),
    Signature(MediaType.GIF, b"GIF89a"),
    Signature(MediaType.WEBP, b"RIFF", also=b"WEBP", also_offset=8),
    # At offset 0 only: readers tolerate junk before the header, which is how polyglot files
    # (an HTML page that is also a "PDF") get through.
    Signature(MediaType.PDF, b"%PDF-"),
    # QuickTime files from before the ftyp box start with a movie atom.
    Signature(MediaType.QUICKTIME, b"moov", offset=4),
    Signature(MediaType.QUICKTIME, b"mdat", offset=4),
    Signature(MediaType.QUICKTIME, b"wide", offset=4),
)

# ISO base media files (MP4, QuickTime, HEIF) start with an `ftyp` box naming a major brand
# and compatible brands; the brand says which format it is.
FTYP_BRANDS: Mapping[bytes, MediaType] = {
    b"heic": MediaType.HEIC,
    b"heix": MediaType.HEIC,
    b"heim": MediaType.HEIC,
    b"heis": MediaType.HEIC,
    b"hevc": MediaType.HEIC,
    b"hevx": MediaType.HEIC,
    b"mif1": MediaType.HEIF,
    b"msf1": MediaType.HEIF,
    b"qt  ": MediaType.QUICKTIME,
    b"isom": MediaType.MP4,
    b"iso2": MediaType.MP4,
    b"iso3": MediaType.MP4,
    b"iso4": MediaType.MP4,
    b"iso5": MediaType.MP4,
    b"iso6": MediaType.MP4,
    b"mp41": MediaType.MP4,
    b"mp42": MediaType.MP4,
    b"avc1": MediaType.MP4,
    b"M4V ": MediaType.MP4,
    b"MSNV": MediaType.MP4,
    b"mmp4": MediaType.MP4,
    b"dash": MediaType.MP4,
}
# Brands whose files are a format we do not take, even though they list one we do as
# compatible (an AVIF image lists mif1, yet no HEIC reader shows it).
REFUSED_MAJOR_BRANDS = frozenset({b"avif", b"avis", b"crx "})

# Names clients use for our types besides the canonical one. HEIC is a kind of HEIF, and
# phones label either way.
DECLARED_ALIASES: Mapping[str, MediaType] = {
    "image/jpg": MediaType.JPEG,
    "image/pjpeg": MediaType.JPEG,
    "image/x-png": MediaType.PNG,
    "image/heic-sequence": MediaType.HEIC,
    "image/heif-sequence": MediaType.HEIF,
    "application/x-pdf": MediaType.PDF,
    "video/x-m4v": MediaType.MP4,
}
_SAME_FAMILY = {MediaType.HEIC: MediaType.HEIF, MediaType.HEIF: MediaType.HEIC}
# Declarations that claim nothing: generic clients send them when they do not know the type.
UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def download_filename(evidence_id: UUID, media_type: str) -> str:
    """The name a download is offered under: made from the id, never from what was uploaded."""
    try:
        extension = FILE_EXTENSIONS[MediaType(media_type)]
    except ValueError:
        extension = "bin"
    return f"evidence-{evidence_id}.{extension}"


def sniff_media_type(head: bytes) -> MediaType | None:
    """The media type the leading bytes show, or None when they match no accepted format."""
    for signature in SIGNATURES:
        if signature.matches(head):
            return signature.media_type
    return _iso_media_type(head)


def _iso_media_type(head: bytes) -> MediaType | None:
    if head[4:8] != b"ftyp" or len(head) < 16:
        return None
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    if major in REFUSED_MAJOR_BRANDS:
        return None
    if major in FTYP_BRANDS:
        return FTYP_BRANDS[major]
    # Compatible brands follow the major brand and its 4-byte minor version.
    end = min(box_size, len(head)) if box_size >= 16 else len(head)
    for start in range(16, end - 3, 4):
        brand = head[start : start + 4]
        if brand in FTYP_BRANDS:
            return FTYP_BRANDS[brand]
    return None


def normalise_declared_type(declared: str | None) -> str:
    """The bare, lower-case media type of a Content-Type value (parameters dropped)."""
    return (declared or "").split(";", 1)[0].strip().lower()


def declared_type_agrees(declared: str | None, sniffed: MediaType) -> bool:
    """Whether a declared Content-Type names the sniffed type (or claims nothing at all)."""
    name = normalise_declared_type(declared)
    if name in UNDECLARED:
        return True
    claimed = DECLARED_ALIASES.get(name)
    if claimed is None:
        try:
            claimed = MediaType(name)
        except ValueError:
            return False
    return claimed is sniffed or _SAME_FAMILY.get(claimed) is sniffed


@dataclass(frozen=True)
class EvidenceLimits:
    """The numbers of the evidence rules (config.py supplies them)."""

    max_bytes: Mapping[SizeClass, int] = field(
        default_factory=lambda: {
            SizeClass.IMAGE: 10 * MIB,
            SizeClass.VIDEO: 100 * MIB,
            SizeClass.DOCUMENT: 10 * MIB,
        }
    )
    max_per_complaint: int = 10

    def max_bytes_for(self, media_type: MediaType) -> int:
        """The largest file of this media type."""
        return self.max_bytes[SIZE_CLASS[media_type]]

    @property
    def largest_file_bytes(self) -> int:
        """The largest file of any type: what an upload body may carry at most."""
        return max(self.max_bytes.values())


class RefusalReason(StrEnum):
    """Why an upload was refused (the service maps each to an HTTP status)."""

    EMPTY = "empty"
    UNRECOGNISED = "unrecognised_media_type"
    NOT_FOR_KIND = "media_type_not_for_kind"
    DECLARED_MISMATCH = "declared_type_mismatch"
    TOO_LARGE = "too_large"


class EvidenceRefused(Exception):  # noqa: N818 - a refusal, named as the decision it is
    """An upload the rules refuse; `detail` says why in words fit for the caller."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _human_size(n: int) -> str:
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n} bytes"


def check_media_type(kind: EvidenceKind, sniffed: MediaType | None, declared: str | None) -> None:
    """Refuses content of no accepted format, of a format the kind does not take, or mislabelled."""
    allowed = ALLOWED_MEDIA_TYPES[kind]
    accepted = ", ".join(sorted(allowed))
    if sniffed is None:
        raise EvidenceRefused(
            RefusalReason.UNRECOGNISED,
            f"the file's content is not an accepted format; {kind.value} evidence may be "
            f"{accepted}",
        )
    if sniffed not in allowed:
        raise EvidenceRefused(
            RefusalReason.NOT_FOR_KIND,
            f"the file is {sniffed.value}, which {kind.value} evidence does not take; "
            f"it may be {accepted}",
        )
    if not declared_type_agrees(declared, sniffed):
        raise EvidenceRefused(
            RefusalReason.DECLARED_MISMATCH,
            f"the file part is declared as {normalise_declared_type(declared)} but its content "
            f"is {sniffed.value}; declare its real type",
        )


@dataclass(frozen=True)
class InspectedContent:
    """What an accepted file is: its type, size and SHA-256 (hex)."""

    media_type: MediaType
    size_bytes: int
    sha256: str


class ContentInspector:
    """Follows an upload chunk by chunk: sniffs its type, counts and hashes it, stops at its limit.

    Feed every chunk through `feed` (which returns it, to pass on to storage) and call `finish`
    at the end; either raises EvidenceRefused as soon as the content is refused, so a caller
    streaming to storage never stores more than one chunk past the limit.
    """

    def __init__(
        self, *, kind: EvidenceKind, declared_type: str | None, limits: EvidenceLimits
    ) -> None:
        self.kind = kind
        self.declared_type = declared_type
        self.limits = limits
        self._digest = hashlib.sha256()
        self._size = 0
        self._head = b""
        self._media_type: MediaType | None = None
        self._limit = limits.largest_file_bytes

    def feed(self, chunk: bytes) -> bytes:
        """Takes the next chunk into account and returns it; refuses once the content is."""
        self._size += len(chunk)
        self._digest.update(chunk)
        if self._media_type is None:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._decide_type()
        if self._size > self._limit:
            self._refuse_size()
        return chunk

    def finish(self) -> InspectedContent:
        """The verdict on the whole content: its type, size and checksum, or a refusal."""
        if self._size == 0:
            raise EvidenceRefused(RefusalReason.EMPTY, "the file is empty")
        if self._media_type is None:
            self._decide_type()
        assert self._media_type is not None
        return InspectedContent(self._media_type, self._size, self._digest.hexdigest())

    def _decide_type(self) -> None:
        sniffed = sniff_media_type(self._head)
        check_media_type(self.kind, sniffed, self.declared_type)
        assert sniffed is not None
        self._media_type = sniffed
        self._limit = self.limits.max_bytes_for(sniffed)

    def _refuse_size(self) -> None:
        what = self._media_type.value if self._media_type else "a file"
        raise EvidenceRefused(
            RefusalReason.TOO_LARGE,
            f"{what} may be at most {_human_size(self._limit)}; this one is larger",
        )


def inspect_content(
    chunks: Iterable[bytes],
    *,
    kind: EvidenceKind,
    declared_type: str | None,
    limits: EvidenceLimits,
) -> InspectedContent:
    """Inspects content held in memory (the streaming path uses ContentInspector directly)."""
    inspector = ContentInspector(kind=kind, declared_type=declared_type, limits=limits)
    for chunk in chunks:
        inspector.feed(chunk)
    return inspector.finish()


@dataclass(frozen=True)
class AttachmentCandidate:
    """An uploaded file a new complaint names, as stored."""

    evidence_id: UUID
    storefront_id: str
    customer_id: str
    attached: bool
    erased: bool


@dataclass(frozen=True)
class AttachmentProblem:
    """Why some named evidence cannot be attached: the ids, each with its reason."""

    reasons: Mapping[UUID, str]

    @property
    def detail(self) -> str:
        """One sentence naming every bad id."""
        listed = "; ".join(f"{evidence_id}: {why}" for evidence_id, why in self.reasons.items())
        return f"these evidence ids cannot be attached: {listed}"

    def __bool__(self) -> bool:
        return bool(self.reasons)


def attachment_problems(
    requested: Iterable[UUID],
    found: Mapping[UUID, AttachmentCandidate],
    *,
    storefront_id: str | None,
    customer_id: str,
) -> AttachmentProblem:
    """Which requested ids a complaint may not take: unknown, another owner's, used or erased.

    Another caller's evidence reads as unknown, so ids never reveal what others uploaded.
    """
    reasons: dict[UUID, str] = {}
    for evidence_id in requested:
        candidate = found.get(evidence_id)
        if candidate is None or candidate.storefront_id != storefront_id:
            reasons[evidence_id] = "not found"
        elif candidate.customer_id != customer_id:
            reasons[evidence_id] = "uploaded for another customer"
        elif candidate.erased:
            reasons[evidence_id] = "erased"
        elif candidate.attached:
            reasons[evidence_id] = "already attached to a complaint"
    return AttachmentProblem(reasons)


_UNSAFE_IN_FILENAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\"\\/:*?<>|;]")
_SPACES = re.compile(r"\s+")


def sanitise_filename(raw: str | None) -> str | None:
    """A file name safe to store and echo in a header: no path, controls, quotes or separators.

    The extension is kept when the name is cut to length; nothing left means no name.
    """
    if not raw:
        return None
    name = unicodedata.normalize("NFC", raw)
    # Browsers on Windows send the full path; keep the last component only.
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE_IN_FILENAME.sub("_", name)
    name = _SPACES.sub(" ", name).strip().lstrip(".")
    if not name.strip("_ "):
        return None
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name
