"""Where evidence files live: a local directory by default, or an S3-compatible bucket.

Both keep the same promise: `put` stores a file whole or not at all (a stream that fails or
is refused half-way leaves nothing under the key), `open` streams it back in chunks, and
`delete` is idempotent. Keys are made by the service (never from caller input).
"""

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from intake_service.config import Settings, get_settings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

READ_CHUNK_BYTES = 256 * 1024
# S3 multipart parts must be at least 5 MiB (but the last); smaller files go in one PUT.
S3_PART_BYTES = 8 * 1024 * 1024
# Keys: slash-separated segments of safe characters; no empty, `.` or `..` segment.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)*$")

Content = bytes | AsyncIterable[bytes]
# What a storage backend raises when it (not the caller) fails: disk, network, the S3 server.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


class ContentMissingError(Exception):
    """No file is stored under the key."""


class InvalidStorageKeyError(ValueError):
    """A key that could name something outside the storage."""


class EvidenceStorage(Protocol):
    """Stores evidence files by key."""

    async def put(self, key: str, content: Content) -> None:
        """Stores the content under the key, whole or not at all; replaces what was there."""

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored content as chunks; ContentMissingError (at once) when there is none."""

    async def delete(self, key: str) -> None:
        """Removes the content under the key, if any."""

    async def exists(self, key: str) -> bool:
        """Whether content is stored under the key."""

    async def aclose(self) -> None:
        """Releases connections (the storage may be used again afterwards)."""


def check_key(key: str) -> str:
    """The key itself when it is safe; InvalidStorageKeyError otherwise."""
    if len(key) > 512 or not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise InvalidStorageKeyError(f"invalid storage key {key!r}")
    return key


async def _chunks(content: Content) -> AsyncIterator[bytes]:
    if isinstance(content, bytes):
        yield content
        return
    async for chunk in content:
        yield chunk


class LocalDirectoryStorage:
    """Files under one directory; each written to a temporary file, then renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        root = self.root.resolve()
        path = (root / check_key(key)).resolve()
        # A symlink inside the directory must not lead out of it either.
        if not path.is_relative_to(root) or path == root:
            raise InvalidStorageKeyError(f"storage key {key!r} leaves the storage directory")
        return path

    async def put(self, key: str, content: Content) -> None:
        """Writes to a temporary file beside the target and renames it when complete."""
        path = self._path(key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        descriptor, temporary = await asyncio.to_thread(
            tempfile.mkstemp, dir=path.parent, prefix=".upload-", suffix=".part"
        )
        try:
            with os.fdopen(descriptor, "wb") as file:
                async for chunk in _chunks(content):
                    await asyncio.to_thread(file.write, chunk)
                await asyncio.to_thread(_flush_to_disk, file)
            # Atomic on one filesystem: readers see the old file or the whole new one.
            await asyncio.to_thread(os.replace, temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """Opens the file now (missing: ContentMissingError) and streams it in chunks."""
        path = self._path(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ContentMissingError(key) from exc
        return _read_file(file)

    async def delete(self, key: str) -> None:
        """Removes the file; a missing one is fine."""
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        """Whether the file is there."""
        return await asyncio.to_thread(self._path(key).is_file)

    async def aclose(self) -> None:
        """Nothing to release."""


def _flush_to_disk(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())


async def _read_file(file: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, READ_CHUNK_BYTES):
            yield chunk
    finally:
        file.close()


class S3Storage:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph...) through aiobotocore.

    The client is made on first use and kept: one connection pool per process.
    """

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        key_prefix: str = "",
        part_bytes: int = S3_PART_BYTES,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.key_prefix = key_prefix
        self.part_bytes = part_bytes
        self._credentials = (access_key_id, secret_access_key)
        self._client: S3Client | None = None
        self._exit_stack = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def _s3(self) -> "S3Client":
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                access_key_id, secret_access_key = self._credentials
                config = AioConfig(
                    # Another server's endpoint usually means path-style bucket addressing.
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                    # Checksums only where S3 demands them: the newer default trailers are
                    # refused by some S3-compatible servers. Our own SHA-256 is in the row.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"max_attempts": 3, "mode": "standard"},
                )
                self._client = await self._exit_stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region,
                        aws_access_key_id=access_key_id,
                        aws_secret_access_key=secret_access_key,
                        config=config,
                    )
                )
        return self._client

    def _object_key(self, key: str) -> str:
        return self.key_prefix + check_key(key)

    async def put(self, key: str, content: Content) -> None:
        """One PUT for a small file; a multipart upload (aborted on failure) for a large one."""
        client = await self._s3()
        object_key = self._object_key(key)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[tuple[int, str]] = []
        try:
            async for chunk in _chunks(content):
                buffer += chunk
                while len(buffer) >= self.part_bytes:
                    if upload_id is None:
                        created = await client.create_multipart_upload(
                            Bucket=self.bucket, Key=object_key
                        )
                        upload_id = created["UploadId"]
                    part = bytes(buffer[: self.part_bytes])
                    del buffer[: self.part_bytes]
                    number = len(parts) + 1
                    sent = await client.upload_part(
                        Bucket=self.bucket,
                        Key=object_key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=part,
                    )
                    parts.append((number, sent["ETag"]))
            if upload_id is None:
                await client.put_object(Bucket=self.bucket, Key=object_key, Body=bytes(buffer))
                return
            if buffer:
                number = len(parts) + 1
                sent = await client.upload_part(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=bytes(buffer),
                )
                parts.append((number, sent["ETag"]))
            await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]
                },
            )
        except BaseException:
            if upload_id is not None:
                # Until aborted, the uploaded parts are kept (and billed) by the server.
                with contextlib.suppress(Exception):
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=object_key, UploadId=upload_id
                    )
            raise

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """Starts the GET now (missing: ContentMissingError) and streams the body in chunks."""
        client = await self._s3()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                raise ContentMissingError(key) from exc
            raise
        return _read_body(response["Body"])

    async def delete(self, key: str) -> None:
        """Deletes the object (S3 answers the same for one that is not there)."""
        client = await self._s3()
        await client.delete_object(Bucket=self.bucket, Key=self._object_key(key))

    async def exists(self, key: str) -> bool:
        """A HEAD of the object."""
        client = await self._s3()
        try:
            await client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def aclose(self) -> None:
        """Closes the client and its connections; the next call makes a new one."""
        async with self._lock:
            self._client = None
            await self._exit_stack.aclose()
            self._exit_stack = AsyncExitStack()


def _is_missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


async def _read_body(body: object) -> AsyncIterator[bytes]:
    # aiobotocore's StreamingBody: an aiohttp stream that must be released when done.
    async with body as stream:  # type: ignore[attr-defined]
        async for chunk in stream.iter_chunks(READ_CHUNK_BYTES):
            yield chunk


def create_storage(settings: Settings) -> EvidenceStorage:
    """The storage INTAKE_EVIDENCE_BACKEND selects, configured from the settings."""
    if settings.evidence_backend == "s3":
        assert settings.evidence_s3_bucket is not None  # the settings refuse s3 without it
        secret = settings.evidence_s3_secret_access_key
        return S3Storage(
            bucket=settings.evidence_s3_bucket,
            endpoint_url=settings.evidence_s3_endpoint_url,
            region=settings.evidence_s3_region,
            access_key_id=settings.evidence_s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            key_prefix=settings.evidence_s3_key_prefix,
        )
    return LocalDirectoryStorage(settings.evidence_local_directory)


@lru_cache
def evidence_storage() -> EvidenceStorage:
    """The process-wide evidence storage, built once from the environment's settings."""
    return create_storage(get_settings())
