"""Evidence storage: the local directory, and S3 against a real S3 API (moto's server, started
here as a process on a free loopback port).

Both backends keep one promise: a file is stored whole or not at all.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from intake_service.storage import (
    ContentMissingError,
    EvidenceStorage,
    InvalidStorageKeyError,
    LocalDirectoryStorage,
    S3Storage,
)

MIB = 1024 * 1024
BUCKET = "evidence-test"


class StreamBrokeError(Exception):
    """What a client that goes away half-way looks like to storage."""


async def stream(*chunks: bytes, then_fail: bool = False) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    if then_fail:
        raise StreamBrokeError


async def read_all(storage: EvidenceStorage, key: str) -> bytes:
    return b"".join([chunk async for chunk in await storage.open(key)])


@pytest.fixture
def local(tmp_path: Path) -> LocalDirectoryStorage:
    return LocalDirectoryStorage(tmp_path / "evidence")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible HTTP server in its own process, stopped after the module."""
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                assert server.poll() is None, "moto server exited"
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
async def s3(s3_endpoint: str) -> AsyncIterator[S3Storage]:
    storage = S3Storage(
        bucket=BUCKET,
        endpoint_url=s3_endpoint,
        access_key_id="test",
        secret_access_key="test",
        key_prefix="intake/",
        part_bytes=5 * MIB,  # S3's smallest part: a 12 MiB file goes in three parts
    )
    client = await storage._s3()
    buckets = await client.list_buckets()
    if BUCKET not in {bucket["Name"] for bucket in buckets.get("Buckets", [])}:
        await client.create_bucket(Bucket=BUCKET)
    try:
        yield storage
    finally:
        await storage.aclose()


class TestLocalDirectory:
    async def test_bytes_and_streams_are_stored_and_read_back(self, local: LocalDirectoryStorage):
        await local.put("evidence/ab/one", b"hello")
        await local.put("evidence/ab/two", stream(b"x" * 300_000, b"y" * 10))
        assert await read_all(local, "evidence/ab/one") == b"hello"
        assert await read_all(local, "evidence/ab/two") == b"x" * 300_000 + b"y" * 10
        assert await local.exists("evidence/ab/one")

    async def test_a_stream_that_fails_half_way_leaves_nothing(self, local: LocalDirectoryStorage):
        with pytest.raises(StreamBrokeError):
            await local.put("evidence/cd/broken", stream(b"x" * 1000, then_fail=True))
        assert not await local.exists("evidence/cd/broken")
        leftovers = [p for p in local.root.rglob("*") if p.is_file()]
        assert leftovers == [], "the temporary file was not removed"

    async def test_a_failed_replacement_keeps_the_old_file_whole(
        self, local: LocalDirectoryStorage
    ):
        await local.put("k", b"old content")
        with pytest.raises(StreamBrokeError):
            await local.put("k", stream(b"new", then_fail=True))
        assert await read_all(local, "k") == b"old content"

    async def test_delete_is_idempotent_and_a_missing_file_is_reported_at_open(
        self, local: LocalDirectoryStorage
    ):
        await local.put("gone", b"x")
        await local.delete("gone")
        await local.delete("gone")
        assert not await local.exists("gone")
        with pytest.raises(ContentMissingError):
            await local.open("gone")

    @pytest.mark.parametrize(
        "key", ["../outside", "/etc/passwd", "a/../../b", "a//b", "a/./b", ".hidden", "", "a\\b"]
    )
    async def test_keys_never_leave_the_directory(self, local: LocalDirectoryStorage, key: str):
        with pytest.raises(InvalidStorageKeyError):
            await local.put(key, b"x")

    async def test_a_symlink_out_of_the_directory_is_not_followed(
        self, local: LocalDirectoryStorage, tmp_path: Path
    ):
        outside = tmp_path / "outside"
        outside.mkdir()
        local.root.mkdir(parents=True)
        (local.root / "link").symlink_to(outside)
        with pytest.raises(InvalidStorageKeyError):
            await local.put("link/file", b"x")
        assert list(outside.iterdir()) == []


class TestS3:
    async def test_a_small_file_round_trips(self, s3: S3Storage):
        await s3.put("evidence/ab/small", stream(b"hello ", b"world"))
        assert await s3.exists("evidence/ab/small")
        assert await read_all(s3, "evidence/ab/small") == b"hello world"

    async def test_a_large_stream_goes_up_in_parts_and_reads_back_whole(self, s3: S3Storage):
        content = os.urandom(12 * MIB + 123)
        chunks = [content[i : i + MIB] for i in range(0, len(content), MIB)]
        await s3.put("evidence/ab/large", stream(*chunks))
        assert await read_all(s3, "evidence/ab/large") == content

    async def test_objects_live_under_the_key_prefix(self, s3: S3Storage):
        await s3.put("evidence/ef/prefixed", b"x")
        client = await s3._s3()
        listed = await client.list_objects_v2(Bucket=BUCKET, Prefix="intake/evidence/ef/")
        assert [item["Key"] for item in listed.get("Contents", [])] == [
            "intake/evidence/ef/prefixed"
        ]

    async def test_a_stream_that_fails_mid_upload_leaves_no_object_and_no_parts(
        self, s3: S3Storage
    ):
        with pytest.raises(StreamBrokeError):
            await s3.put("evidence/cd/broken", stream(os.urandom(11 * MIB), then_fail=True))
        assert not await s3.exists("evidence/cd/broken")
        client = await s3._s3()
        pending = await client.list_multipart_uploads(Bucket=BUCKET)
        assert pending.get("Uploads", []) == [], "the multipart upload was not aborted"

    async def test_delete_is_idempotent_and_a_missing_object_is_reported_at_open(
        self, s3: S3Storage
    ):
        await s3.put("evidence/ab/gone", b"x")
        await s3.delete("evidence/ab/gone")
        await s3.delete("evidence/ab/gone")
        assert not await s3.exists("evidence/ab/gone")
        with pytest.raises(ContentMissingError):
            await s3.open("evidence/ab/gone")

    async def test_keys_are_checked_before_any_request(self, s3: S3Storage):
        with pytest.raises(InvalidStorageKeyError):
            await s3.put("../other-bucket/x", b"x")

    async def test_a_closed_storage_reconnects_on_next_use(self, s3: S3Storage):
        await s3.put("evidence/ab/again", b"1")
        await s3.aclose()
        assert await read_all(s3, "evidence/ab/again") == b"1"


class TestSelection:
    def test_the_backend_is_chosen_by_setting(self, tmp_path: Path):
        from intake_service.config import Settings
        from intake_service.storage import create_storage

        local = create_storage(Settings(evidence_local_directory=tmp_path))
        assert isinstance(local, LocalDirectoryStorage)
        assert local.root == tmp_path
        s3 = create_storage(
            Settings(
                evidence_backend="s3",
                evidence_s3_bucket="b",
                evidence_s3_endpoint_url="",  # as a manifest leaves it: AWS itself
                evidence_s3_secret_access_key="",
            )
        )
        assert isinstance(s3, S3Storage)
        assert (s3.bucket, s3.endpoint_url) == ("b", None)

    def test_s3_without_a_bucket_is_refused_at_startup(self):
        from pydantic import ValidationError

        from intake_service.config import Settings

        with pytest.raises(ValidationError, match="INTAKE_EVIDENCE_S3_BUCKET"):
            Settings(evidence_backend="s3")

    def test_evidence_uploads_get_a_body_limit_of_their_own(self):
        from intake_service.config import Settings

        limits = Settings(evidence_max_video_bytes=50 * MIB).body_limits_by_path_prefix()
        assert limits == {"/v1/evidence": 50 * MIB + 64 * 1024}
