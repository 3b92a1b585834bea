"""The evidence form reader without a server: fields first, the file streamed, bad forms refused."""

from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request

from intake_service.domain.evidence import EvidenceKind
from intake_service.uploads import EvidenceForm, MalformedUploadError, read_evidence_form
from shared.errors import ProblemError, UnprocessableError, UnsupportedMediaTypeError

BOUNDARY = "b0undary"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


def part(name: str, content: bytes, filename: str | None = None, ctype: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + content + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()
FIELDS = part("kind", b"photo") + part("customer_id", b" cust-1 ")


def request(body: bytes, *, chunk: int = 7, content_type: str | None = None) -> Request:
    """A request whose body arrives in small chunks, as a slow client would send it."""
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]

    async def receive() -> dict[str, object]:
        if pieces:
            return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}
        return {"type": "http.request", "body": b"", "more_body": False}

    ctype = content_type or f"multipart/form-data; boundary={BOUNDARY}"
    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", ctype.encode())]}
    return Request(scope, receive)


async def drain(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_fields_are_read_first_and_the_file_streams_whole():
    body = FIELDS + part("file", JPEG, "水壶.jpg", "image/jpeg") + END
    form = await read_evidence_form(request(body))
    assert isinstance(form, EvidenceForm)
    assert (form.kind, form.customer_id) == (EvidenceKind.PHOTO, "cust-1")
    assert (form.filename, form.declared_type) == ("水壶.jpg", "image/jpeg")
    assert await drain(form.chunks) == JPEG


async def test_a_body_cut_inside_the_file_fails_the_stream():
    body = FIELDS + part("file", JPEG, "a.jpg", "image/jpeg")
    form = await read_evidence_form(request(body[:-100]))
    with pytest.raises(MalformedUploadError, match="the upload is cut"):
        await drain(form.chunks)


async def test_a_part_after_the_file_fails_the_stream():
    body = FIELDS + part("file", JPEG, "a.jpg") + part("file", JPEG, "b.jpg") + END
    form = await read_evidence_form(request(body, chunk=4096))
    with pytest.raises(MalformedUploadError, match="must be the last one"):
        await drain(form.chunks)


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        (FIELDS + END, UnprocessableError, "no file part"),
        (part("file", JPEG, "a.jpg") + FIELDS + END, UnprocessableError, "kind is missing"),
        (
            part("kind", b"photo") + part("file", JPEG, "a.jpg") + END,
            UnprocessableError,
            "customer_id is missing",
        ),
        (
            part("kind", b"selfie") + part("customer_id", b"c") + part("file", b"x", "a") + END,
            UnprocessableError,
            "unknown evidence kind 'selfie'",
        ),
        (part("kind", b"photo") + part("kind", b"video") + END, UnprocessableError, "twice"),
        (
            part("kind", b"photo") + part("note", b"hello") + END,
            UnprocessableError,
            "unexpected form field 'note'",
        ),
        (FIELDS + part("file", b"plain text") + END, UnprocessableError, "must be a file"),
        (
            part("kind", b"photo")
            + part("customer_id", b"bad id!")
            + part("file", b"x", "a")
            + END,
            UnprocessableError,
            "customer_id is not a valid id",
        ),
        (part("kind", b"p" * 300) + END, UnprocessableError, "longer than 256 bytes"),
        (b"--" + BOUNDARY.encode() + b"\r\nX-Broken\r\n\r\n", MalformedUploadError, "malformed"),
    ],
    ids=[
        "no file",
        "file first",
        "no customer",
        "unknown kind",
        "field twice",
        "unknown field",
        "file without a name",
        "bad customer id",
        "long field",
        "broken headers",
    ],
)
async def test_a_bad_form_is_refused_before_the_file_is_read(
    body: bytes, error: type[ProblemError], words: str
):
    with pytest.raises(error, match=words):
        await read_evidence_form(request(body))


async def test_a_body_that_is_not_multipart_is_415():
    with pytest.raises(UnsupportedMediaTypeError, match="multipart/form-data"):
        await read_evidence_form(request(b"{}", content_type="application/json"))


async def test_a_multipart_body_without_a_boundary_is_refused():
    with pytest.raises(MalformedUploadError, match="boundary"):
        await read_evidence_form(request(b"", content_type="multipart/form-data"))
