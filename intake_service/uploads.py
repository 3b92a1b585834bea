"""Reads an evidence upload (multipart/form-data) as it arrives, without buffering the file.

The small fields (`kind`, `customer_id`) come first and the file part last, as S3's browser
uploads require too: the fields are checked before a byte of the file is stored, and the file
then streams from the socket through the checks into storage. A body that ends inside the file
part, or carries anything after it, fails the stream, so storage keeps nothing of it.
"""

import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from intake_service.domain.evidence import EvidenceKind
from shared.auth.dependencies import ID_PATTERN
from shared.errors import ProblemError, UnprocessableError, UnsupportedMediaTypeError

FILE_FIELD = "file"
TEXT_FIELDS = ("kind", "customer_id")
MAX_TEXT_FIELD_BYTES = 256
MAX_PART_HEADERS = 8
MAX_PART_HEADER_BYTES = 4096


class MalformedUploadError(ProblemError):
    """A multipart body that cannot be read as the upload form."""

    status = 400
    title = "Malformed upload"
    type_slug = "malformed-upload"


@dataclass(frozen=True)
class _Part:
    name: str
    filename: str | None
    content_type: str | None


@dataclass(frozen=True)
class EvidenceForm:
    """The upload form's fields and its file, still to be read (once) as chunks."""

    kind: EvidenceKind
    customer_id: str
    filename: str | None
    declared_type: str | None
    chunks: AsyncIterator[bytes]


class MultipartReader:
    """Parts of a multipart/form-data body, pulled one at a time from the request stream."""

    def __init__(self, content_type: str | None, stream: AsyncIterator[bytes]) -> None:
        media_type, options = parse_options_header(content_type or "")
        if media_type != b"multipart/form-data":
            raise UnsupportedMediaTypeError(
                "send the evidence as multipart/form-data (fields kind and customer_id, "
                "then the file)"
            )
        boundary = options.get(b"boundary")
        if not boundary:
            raise MalformedUploadError("the multipart Content-Type names no boundary")
        self._stream = stream
        self._events: deque[tuple[str, object]] = deque()
        self._headers: list[tuple[bytes, bytes]] = []
        self._field = b""
        self._value = b""
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
            max_header_count=MAX_PART_HEADERS,
            max_header_size=MAX_PART_HEADER_BYTES,
        )

    # The parser's callbacks only queue events; the async reader acts on them.
    def _on_part_begin(self) -> None:
        self._headers = []

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers.append((self._field.lower(), self._value))
        self._field, self._value = b"", b""

    def _on_headers_finished(self) -> None:
        self._events.append(("part", _describe_part(self._headers)))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(("data", bytes(data[start:end])))

    def _on_part_end(self) -> None:
        self._events.append(("end", None))

    async def _next_event(self) -> tuple[str, object] | None:
        while not self._events:
            if self._ended:
                return None
            try:
                chunk = await anext(self._stream)
            except StopAsyncIteration:
                self._ended = True
                self._parser.finalize()
                continue
            except ClientDisconnect as exc:
                raise MalformedUploadError("the upload was cut off before it ended") from exc
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                raise MalformedUploadError(f"the multipart body is malformed: {exc}") from exc
        return self._events.popleft()

    async def next_part(self) -> _Part | None:
        """The next part's headers, or None at the end of the body."""
        while (event := await self._next_event()) is not None:
            kind, value = event
            if kind == "part":
                assert isinstance(value, _Part)
                return value
        return None

    async def read_text(self, name: str) -> str:
        """The rest of the current (small, text) part."""
        value = b""
        while (event := await self._next_event()) is not None:
            kind, data = event
            if kind == "end":
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise UnprocessableError(f"form field {name} is not UTF-8 text") from exc
            assert isinstance(data, bytes)
            value += data
            if len(value) > MAX_TEXT_FIELD_BYTES:
                raise UnprocessableError(
                    f"form field {name} is longer than {MAX_TEXT_FIELD_BYTES} bytes"
                )
        raise MalformedUploadError(f"the body ended inside form field {name}")

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The current part's content; fails if the body ends inside it or goes on after it."""
        while (event := await self._next_event()) is not None:
            kind, data = event
            if kind == "end":
                break
            assert isinstance(data, bytes)
            if data:
                yield data
        else:
            raise MalformedUploadError("the body ended inside the file part: the upload is cut")
        if await self.next_part() is not None:
            raise MalformedUploadError(
                f"the {FILE_FIELD} part must be the last one; nothing may follow it"
            )


def _describe_part(headers: list[tuple[bytes, bytes]]) -> _Part:
    found = dict(headers)
    _, options = parse_options_header(found.get(b"content-disposition", b"").decode("latin-1"))
    name = options.get(b"name")
    if name is None:
        raise MalformedUploadError("a form part has no name in its Content-Disposition")
    filename = options.get(b"filename")
    content_type = found.get(b"content-type")
    return _Part(
        name=name.decode("utf-8", errors="replace"),
        # Browsers send the file name as UTF-8 bytes.
        filename=filename.decode("utf-8", errors="replace") if filename is not None else None,
        content_type=content_type.decode("latin-1") if content_type is not None else None,
    )


_ID = re.compile(ID_PATTERN)


async def read_evidence_form(request: Request) -> EvidenceForm:
    """Reads the fields up to the file part; the file itself is left to stream from `chunks`."""
    reader = MultipartReader(request.headers.get("content-type"), request.stream())
    fields: dict[str, str] = {}
    while (part := await reader.next_part()) is not None:
        if part.name == FILE_FIELD and part.filename is not None:
            return EvidenceForm(
                kind=_kind(fields),
                customer_id=_customer_id(fields),
                filename=part.filename,
                declared_type=part.content_type,
                chunks=reader.file_chunks(),
            )
        if part.name == FILE_FIELD:
            raise UnprocessableError(f"form part {FILE_FIELD} must be a file (with a filename)")
        if part.name not in TEXT_FIELDS:
            expected = ", ".join((*TEXT_FIELDS, FILE_FIELD))
            raise UnprocessableError(f"unexpected form field {part.name!r}; send {expected}")
        if part.name in fields:
            raise UnprocessableError(f"form field {part.name} is given twice")
        fields[part.name] = (await reader.read_text(part.name)).strip()
    raise UnprocessableError(f"the form has no {FILE_FIELD} part: attach the file last")


def _kind(fields: dict[str, str]) -> EvidenceKind:
    value = fields.get("kind")
    known = ", ".join(kind.value for kind in EvidenceKind)
    if value is None:
        raise UnprocessableError(f"form field kind is missing (before the file): one of {known}")
    try:
        return EvidenceKind(value)
    except ValueError:
        raise UnprocessableError(f"unknown evidence kind {value!r}: one of {known}") from None


def _customer_id(fields: dict[str, str]) -> str:
    value = fields.get("customer_id")
    if value is None:
        raise UnprocessableError("form field customer_id is missing (before the file)")
    if not _ID.fullmatch(value):
        raise UnprocessableError("form field customer_id is not a valid id")
    return value
