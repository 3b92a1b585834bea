"""Evidence rules without I/O: what a file is, which kinds take it, limits, attachment, names."""

import hashlib
import uuid

import pytest

from intake_service.domain.evidence import (
    SNIFF_BYTES,
    AttachmentCandidate,
    ContentInspector,
    EvidenceKind,
    EvidenceLimits,
    EvidenceRefused,
    MediaType,
    RefusalReason,
    SizeClass,
    attachment_problems,
    check_media_type,
    declared_type_agrees,
    download_filename,
    inspect_content,
    sanitise_filename,
    sniff_media_type,
)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """The start of an ISO base media file: an ftyp box, then some media data."""
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08mdat"


SAMPLES = {
    MediaType.JPEG: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    MediaType.PNG: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    MediaType.GIF: b"GIF89a\x01\x00\x01\x00",
    MediaType.WEBP: b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    MediaType.HEIC: ftyp(b"heic", b"mif1", b"heic"),
    MediaType.HEIF: ftyp(b"mif1", b"mif1"),
    MediaType.MP4: ftyp(b"isom", b"isom", b"avc1"),
    MediaType.QUICKTIME: ftyp(b"qt  ", b"qt  "),
    MediaType.PDF: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
}
SMALL = EvidenceLimits(
    max_bytes={SizeClass.IMAGE: 1000, SizeClass.VIDEO: 5000, SizeClass.DOCUMENT: 2000},
    max_per_complaint=3,
)


def padded(head: bytes, size: int) -> bytes:
    return head + b"\x00" * (size - len(head))


class TestSniffing:
    @pytest.mark.parametrize("media_type", list(SAMPLES), ids=str)
    def test_each_accepted_format_is_told_by_its_leading_bytes(self, media_type: MediaType):
        assert sniff_media_type(padded(SAMPLES[media_type], SNIFF_BYTES)) is media_type

    def test_gif87a_and_old_quicktime_without_ftyp_are_recognised(self):
        assert sniff_media_type(b"GIF87a\x01\x00") is MediaType.GIF
        assert sniff_media_type(b"\x00\x00\x00\x20moov\x00\x00") is MediaType.QUICKTIME

    def test_an_unknown_major_brand_falls_back_to_a_known_compatible_one(self):
        assert sniff_media_type(ftyp(b"XAVC", b"XAVC", b"mp42")) is MediaType.MP4

    def test_avif_is_refused_even_though_it_lists_a_heif_brand(self):
        assert sniff_media_type(ftyp(b"avif", b"avif", b"mif1")) is None

    @pytest.mark.parametrize(
        "content",
        [
            b"<html><script>alert(1)</script></html>",
            b"MZ\x90\x00\x03\x00\x00\x00",  # a Windows executable
            b"PK\x03\x04\x14\x00",  # a zip
            b"   %PDF-1.4 junk before the header",
            b"RIFF\x24\x00\x00\x00WAVEfmt ",  # RIFF, but audio
            b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00",  # ISO, but an audio brand
            b"",
        ],
    )
    def test_content_of_no_accepted_format_is_not_recognised(self, content: bytes):
        assert sniff_media_type(content) is None


class TestKindsAndDeclaredTypes:
    @pytest.mark.parametrize(
        ("kind", "media_type"),
        [
            (EvidenceKind.PHOTO, MediaType.HEIC),
            (EvidenceKind.VIDEO, MediaType.QUICKTIME),
            (EvidenceKind.SCREENSHOT, MediaType.GIF),
            (EvidenceKind.RECEIPT, MediaType.PDF),
            (EvidenceKind.CHAT_LOG, MediaType.PNG),
        ],
    )
    def test_each_kind_takes_its_formats(self, kind: EvidenceKind, media_type: MediaType):
        check_media_type(kind, media_type, media_type.value)

    @pytest.mark.parametrize(
        ("kind", "media_type"),
        [
            (EvidenceKind.VIDEO, MediaType.PNG),
            (EvidenceKind.PHOTO, MediaType.PDF),
            (EvidenceKind.CHAT_LOG, MediaType.MP4),
            (EvidenceKind.RECEIPT, MediaType.QUICKTIME),
        ],
    )
    def test_a_kind_refuses_formats_it_does_not_take_and_says_what_it_takes(
        self, kind: EvidenceKind, media_type: MediaType
    ):
        with pytest.raises(EvidenceRefused) as refused:
            check_media_type(kind, media_type, None)
        assert refused.value.reason is RefusalReason.NOT_FOR_KIND
        assert media_type.value in refused.value.detail
        assert kind.value in refused.value.detail

    def test_unrecognised_content_is_refused_naming_what_the_kind_takes(self):
        with pytest.raises(EvidenceRefused) as refused:
            check_media_type(EvidenceKind.VIDEO, None, "video/mp4")
        assert refused.value.reason is RefusalReason.UNRECOGNISED
        assert "video/mp4" in refused.value.detail
        assert "video/quicktime" in refused.value.detail

    @pytest.mark.parametrize(
        ("declared", "sniffed"),
        [
            ("image/jpeg", MediaType.JPEG),
            ("IMAGE/JPG", MediaType.JPEG),
            ("image/png; name=x.png", MediaType.PNG),
            ("image/heif", MediaType.HEIC),
            ("image/heic", MediaType.HEIF),
            ("application/octet-stream", MediaType.PDF),
            (None, MediaType.MP4),
            ("", MediaType.MP4),
        ],
    )
    def test_a_declared_type_agrees_when_it_names_the_content_or_claims_nothing(
        self, declared: str | None, sniffed: MediaType
    ):
        assert declared_type_agrees(declared, sniffed)

    def test_a_declared_type_that_names_another_format_is_refused_as_spoofed(self):
        assert not declared_type_agrees("image/png", MediaType.PDF)
        assert not declared_type_agrees("text/html", MediaType.JPEG)
        with pytest.raises(EvidenceRefused) as refused:
            check_media_type(EvidenceKind.RECEIPT, MediaType.PDF, "image/png")
        assert refused.value.reason is RefusalReason.DECLARED_MISMATCH
        assert "image/png" in refused.value.detail
        assert "application/pdf" in refused.value.detail


class TestInspection:
    def test_the_checksum_size_and_type_are_those_of_the_whole_content(self):
        content = padded(SAMPLES[MediaType.PNG], 900)
        chunks = [content[i : i + 100] for i in range(0, len(content), 100)]
        found = inspect_content(
            chunks, kind=EvidenceKind.PHOTO, declared_type="image/png", limits=SMALL
        )
        assert found.media_type is MediaType.PNG
        assert found.size_bytes == 900
        assert found.sha256 == hashlib.sha256(content).hexdigest()

    def test_a_file_shorter_than_the_sniffed_head_is_decided_at_the_end(self):
        found = inspect_content(
            [b"%PDF-1.4\n"], kind=EvidenceKind.RECEIPT, declared_type=None, limits=SMALL
        )
        assert (found.media_type, found.size_bytes) == (MediaType.PDF, 9)

    def test_an_empty_file_is_refused(self):
        with pytest.raises(EvidenceRefused) as refused:
            inspect_content([], kind=EvidenceKind.PHOTO, declared_type=None, limits=SMALL)
        assert refused.value.reason is RefusalReason.EMPTY

    def test_the_stream_is_stopped_at_the_first_chunk_past_its_types_limit(self):
        inspector = ContentInspector(kind=EvidenceKind.PHOTO, declared_type=None, limits=SMALL)
        head = padded(SAMPLES[MediaType.JPEG], 600)
        inspector.feed(head)
        with pytest.raises(EvidenceRefused) as refused:
            inspector.feed(b"\x00" * 401)  # 1001 bytes: over the 1000-byte image limit
        assert refused.value.reason is RefusalReason.TOO_LARGE
        assert "image/jpeg may be at most 1000 bytes" in refused.value.detail

    def test_videos_have_their_own_larger_limit(self):
        content = padded(SAMPLES[MediaType.MP4], 4000)
        found = inspect_content(
            [content[:300], content[300:]],
            kind=EvidenceKind.VIDEO,
            declared_type="video/mp4",
            limits=SMALL,
        )
        assert found.size_bytes == 4000

    def test_limits_are_stated_in_mebibytes_when_whole(self):
        limits = EvidenceLimits()
        inspector = ContentInspector(kind=EvidenceKind.RECEIPT, declared_type=None, limits=limits)
        inspector.feed(padded(SAMPLES[MediaType.PDF], 10 * 1024 * 1024))
        with pytest.raises(EvidenceRefused, match="application/pdf may be at most 10 MiB"):
            inspector.feed(b"x")

    def test_a_spoofed_declaration_is_refused_as_soon_as_the_head_is_in(self):
        inspector = ContentInspector(
            kind=EvidenceKind.PHOTO, declared_type="image/png", limits=SMALL
        )
        with pytest.raises(EvidenceRefused) as refused:
            inspector.feed(padded(SAMPLES[MediaType.JPEG], SNIFF_BYTES))
        assert refused.value.reason is RefusalReason.DECLARED_MISMATCH


class TestAttachment:
    def candidate(self, **overrides: object) -> AttachmentCandidate:
        values: dict[str, object] = {
            "evidence_id": uuid.uuid4(),
            "storefront_id": "sf-1",
            "customer_id": "cust-1",
            "attached": False,
            "erased": False,
        }
        values.update(overrides)
        return AttachmentCandidate(**values)  # type: ignore[arg-type]

    def test_own_unattached_evidence_may_be_attached(self):
        good = self.candidate()
        problem = attachment_problems(
            [good.evidence_id],
            {good.evidence_id: good},
            storefront_id="sf-1",
            customer_id="cust-1",
        )
        assert not problem

    def test_every_bad_id_is_named_with_its_reason(self):
        unknown = uuid.uuid4()
        others = self.candidate(storefront_id="sf-2")
        another_customer = self.candidate(customer_id="cust-2")
        used = self.candidate(attached=True)
        erased = self.candidate(erased=True)
        good = self.candidate()
        found = {c.evidence_id: c for c in (others, another_customer, used, erased, good)}
        problem = attachment_problems(
            [
                unknown,
                others.evidence_id,
                another_customer.evidence_id,
                used.evidence_id,
                erased.evidence_id,
                good.evidence_id,
            ],
            found,
            storefront_id="sf-1",
            customer_id="cust-1",
        )
        assert problem.reasons == {
            unknown: "not found",
            # Another storefront's upload reads exactly like one that does not exist.
            others.evidence_id: "not found",
            another_customer.evidence_id: "uploaded for another customer",
            used.evidence_id: "already attached to a complaint",
            erased.evidence_id: "erased",
        }
        for evidence_id in problem.reasons:
            assert str(evidence_id) in problem.detail
        assert str(good.evidence_id) not in problem.detail


class TestNames:
    @pytest.mark.parametrize(
        ("raw", "kept"),
        [
            ("receipt.pdf", "receipt.pdf"),
            ("C:\\Users\\amy\\Desktop\\broken kettle.jpg", "broken kettle.jpg"),
            ("../../etc/passwd", "passwd"),
            ('a"b;c\r\nd.png', "a_b_c__d.png"),
            ("  水壶  裂纹.HEIC ", "水壶 裂纹.HEIC"),
            ("...hidden", "hidden"),
            ("", None),
            (None, None),
            ("../", None),
            ("\x00\x01", None),
        ],
    )
    def test_a_file_name_keeps_no_path_controls_quotes_or_separators(
        self, raw: str | None, kept: str | None
    ):
        assert sanitise_filename(raw) == kept

    def test_a_long_name_is_cut_but_keeps_its_extension(self):
        name = sanitise_filename("x" * 500 + ".jpeg")
        assert name is not None
        assert len(name) == 120
        assert name.endswith(".jpeg")

    def test_downloads_are_named_from_the_id_never_from_the_upload(self):
        evidence_id = uuid.UUID("0b8a3c62-4f0e-4a59-9a43-6c1f5d9e2a11")
        assert download_filename(evidence_id, "video/quicktime") == f"evidence-{evidence_id}.mov"
        assert download_filename(evidence_id, "application/zip") == f"evidence-{evidence_id}.bin"
