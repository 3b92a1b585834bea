"""Evidence on the running platform: upload, attach on create, download in scope, and every
bad input refused as a 4xx problem with nothing stored (no row, no file)."""

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared.events import Topic, qualified_topic
from shared.time import utcnow
from tests.support.auth import MERCHANT, OTHER_MERCHANT, OTHER_STOREFRONT, STOREFRONT, bearer
from tests.support.complaints import complaint_body, post_complaint
from tests.support.kafka import read_all
from tests.support.platform import Platform
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

MIB = 1024 * 1024
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + b"\x11" * 2000
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x22" * 1500
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"1 0 obj <<>> endobj\n" * 50
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomavc1" + b"\x00" * 3000


def customer() -> str:
    """A customer of this test only, so its rows can be counted."""
    return f"cust-ev-{uuid.uuid4().hex[:10]}"


async def upload(
    client: httpx.AsyncClient,
    platform: Platform,
    customer_id: str,
    *,
    kind: str = "photo",
    content: bytes = JPEG,
    filename: str = "broken kettle.jpg",
    content_type: str | None = "image/jpeg",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Uploads one file as a storefront's backend would: fields first, then the file."""
    file: tuple[Any, ...] = (
        (filename, content, content_type) if content_type else (filename, content)
    )
    return await client.post(
        f"{platform.url('intake')}/v1/evidence",
        data={"kind": kind, "customer_id": customer_id},
        files={"file": file},
        headers=headers or STOREFRONT.headers(),
    )


def multipart(*parts: tuple[str, str | None, str | None, bytes], close: bool = True) -> bytes:
    """A hand-made multipart body: (name, filename, content type, content) per part."""
    body = b""
    for name, filename, content_type, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type:
            body += f"Content-Type: {content_type}\r\n".encode()
        body += b"\r\n" + content + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


BOUNDARY = "evidence-test-boundary"


async def post_raw(
    client: httpx.AsyncClient, platform: Platform, body: bytes, content_type: str | None = None
) -> httpx.Response:
    return await client.post(
        f"{platform.url('intake')}/v1/evidence",
        content=body,
        headers={
            **STOREFRONT.headers(),
            "content-type": content_type or f"multipart/form-data; boundary={BOUNDARY}",
        },
    )


def evidence_directory(platform: Platform) -> Path:
    """Where the intake process keeps evidence files (set by the test harness)."""
    return Path(platform.processes["intake"].extra_env["INTAKE_EVIDENCE_LOCAL_DIRECTORY"])


def stored_files(platform: Platform) -> set[Path]:
    """Every file in the evidence directory, temporary uploads included."""
    root = evidence_directory(platform)
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as http_client:
        yield http_client


async def evidence_rows(db: asyncpg.Connection, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM intake.evidence WHERE customer_id = $1 ORDER BY uploaded_at",
            customer_id,
        )
    )


def assert_problem(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


class TestUpload:
    async def test_an_upload_is_stored_with_its_sniffed_type_size_and_checksum(
        self, platform, client, admin_db
    ):
        who = customer()
        response = await upload(
            client,
            platform,
            who,
            kind="receipt",
            content=PDF,
            filename="发票.pdf",
            content_type="application/pdf",
        )
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt["media_type"] == "application/pdf"
        assert receipt["size_bytes"] == len(PDF)
        assert receipt["sha256"] == hashlib.sha256(PDF).hexdigest()
        (row,) = await evidence_rows(admin_db, who)
        assert str(row["id"]) == receipt["evidence_id"]
        assert (row["storefront_id"], row["complaint_id"]) == ("sf-test", None)
        assert row["original_filename"] == "发票.pdf"
        stored = evidence_directory(platform) / row["storage_key"]
        assert stored.read_bytes() == PDF

    async def test_the_storefront_reads_its_upload_back_whole(self, platform, client):
        who = customer()
        evidence_id = (
            await upload(client, platform, who, content=PNG, content_type="image/png")
        ).json()["evidence_id"]
        url = f"{platform.url('intake')}/v1/evidence/{evidence_id}"
        view = await client.get(url, headers=STOREFRONT.headers())
        content = await client.get(f"{url}/content", headers=STOREFRONT.headers())
        assert view.status_code == 200, view.text
        assert (view.json()["complaint_id"], view.json()["filename"]) == (None, "broken kettle.jpg")
        assert content.status_code == 200
        assert content.content == PNG
        assert content.headers["content-type"] == "image/png"
        assert content.headers["x-content-type-options"] == "nosniff"
        assert content.headers["content-disposition"] == (
            f'attachment; filename="evidence-{evidence_id}.png"'
        )

    async def test_a_generic_octet_stream_declaration_is_taken_for_what_the_content_is(
        self, platform, client
    ):
        response = await upload(
            client,
            platform,
            customer(),
            kind="video",
            content=MP4,
            filename="clip.mp4",
            content_type="application/octet-stream",
        )
        assert response.status_code == 201, response.text
        assert response.json()["media_type"] == "video/mp4"


class TestAttachOnCreate:
    async def test_a_complaint_takes_its_evidence_lists_it_and_announces_it(
        self, platform, client, admin_db
    ):
        who = customer()
        photo = (await upload(client, platform, who)).json()
        video = (
            await upload(
                client,
                platform,
                who,
                kind="video",
                content=MP4,
                filename="clip.mp4",
                content_type="video/mp4",
            )
        ).json()
        body = complaint_body(1)
        body["customer"]["customer_id"] = who
        body["evidence_ids"] = [photo["evidence_id"], video["evidence_id"]]
        created = await post_complaint(client, platform.url("intake"), body)
        assert created.status_code == 201, created.text
        complaint_id = created.json()["complaint_id"]

        rows = await evidence_rows(admin_db, who)
        assert {str(row["complaint_id"]) for row in rows} == {complaint_id}
        view = await client.get(
            f"{platform.url('intake')}/v1/complaints/{complaint_id}", headers=STOREFRONT.headers()
        )
        listed = {item["evidence_id"]: item for item in view.json()["evidence"]}
        assert set(listed) == {photo["evidence_id"], video["evidence_id"]}
        assert listed[video["evidence_id"]]["media_type"] == "video/mp4"

        topic = qualified_topic(Topic.INTAKE_COMPLAINT.value, platform.stack.config.topic_prefix)

        async def announced() -> list[dict[str, Any]] | None:
            for message in await read_all(platform.stack.config.kafka_bootstrap, topic):
                event = json.loads(message.value or b"{}")
                if (
                    event.get("complaint_id") == complaint_id
                    and event.get("event_type") == "complaint.received"
                ):
                    evidence: list[dict[str, Any]] = event["payload"]["evidence"]
                    return evidence
            return None

        evidence = await wait_until(announced, timeout_s=30, what="complaint.received")
        assert {item["id"]: item["sha256"] for item in evidence} == {
            photo["evidence_id"]: photo["sha256"],
            video["evidence_id"]: video["sha256"],
        }

    async def test_unknown_foreign_or_used_evidence_is_refused_by_id_and_nothing_is_written(
        self, platform, client, admin_db
    ):
        who, someone_else = customer(), customer()
        mine = (await upload(client, platform, who)).json()["evidence_id"]
        theirs = (await upload(client, platform, someone_else)).json()["evidence_id"]
        other_storefronts = (
            await upload(client, platform, who, headers=OTHER_STOREFRONT.headers())
        ).json()["evidence_id"]
        unknown = str(uuid.uuid4())
        body = complaint_body(1)
        body["customer"]["customer_id"] = who
        body["evidence_ids"] = [mine, theirs, other_storefronts, unknown]
        before = await admin_db.fetchval(
            "SELECT count(*) FROM intake.complaints WHERE customer_id = $1", who
        )
        refused = await post_complaint(client, platform.url("intake"), body)
        assert_problem(refused, 422, theirs, other_storefronts, unknown)
        assert mine not in refused.json()["detail"]
        assert "uploaded for another customer" in refused.json()["detail"]
        assert set(refused.json()["evidence_ids"]) == {theirs, other_storefronts, unknown}
        after = await admin_db.fetchval(
            "SELECT count(*) FROM intake.complaints WHERE customer_id = $1", who
        )
        assert after == before
        assert all(row["complaint_id"] is None for row in await evidence_rows(admin_db, who))

        body["evidence_ids"] = [mine]
        assert (await post_complaint(client, platform.url("intake"), body)).status_code == 201
        again = complaint_body(1)
        again["customer"]["customer_id"] = who
        again["evidence_ids"] = [mine]
        assert_problem(
            await post_complaint(client, platform.url("intake"), again),
            422,
            "already attached to a complaint",
        )

    async def test_a_retry_with_its_idempotency_key_gets_the_first_receipt(self, platform, client):
        who = customer()
        evidence_id = (await upload(client, platform, who)).json()["evidence_id"]
        body = complaint_body(1)
        body["customer"]["customer_id"] = who
        body["evidence_ids"] = [evidence_id]
        key = f"evidence-retry-{uuid.uuid4()}"
        first = await post_complaint(
            client, platform.url("intake"), body, **{"Idempotency-Key": key}
        )
        retry = await post_complaint(
            client, platform.url("intake"), body, **{"Idempotency-Key": key}
        )
        assert first.status_code == 201, first.text
        assert retry.status_code == 201, retry.text
        assert retry.headers.get("idempotent-replayed") == "true"
        assert retry.json()["complaint_id"] == first.json()["complaint_id"]

    async def test_more_evidence_than_a_complaint_may_carry_is_refused(self, platform, client):
        body = complaint_body(1)
        body["customer"]["customer_id"] = customer()
        body["evidence_ids"] = [str(uuid.uuid4()) for _ in range(11)]
        assert_problem(
            await post_complaint(client, platform.url("intake"), body), 422, "at most 10"
        )


class TestScope:
    async def test_only_callers_whose_scope_covers_it_see_or_download_it(self, platform, client):
        who = customer()
        evidence_id = (await upload(client, platform, who)).json()["evidence_id"]
        base = f"{platform.url('intake')}/v1/evidence"
        url = f"{base}/{evidence_id}"
        unknown = uuid.uuid4()
        missing = await client.get(f"{base}/{unknown}", headers=bearer("test-admin"))
        assert missing.json()["detail"] == f"evidence {unknown} not found"

        async def status_of(headers: dict[str, str], path: str = "") -> int:
            response = await client.get(url + path, headers=headers)
            if response.status_code == 404:
                # Out of scope reads like a missing file, word for word.
                assert response.json()["detail"] == f"evidence {evidence_id} not found"
            return response.status_code

        # Not attached yet: the uploading storefront and admins only.
        assert await status_of(MERCHANT.headers()) == 404
        assert await status_of(bearer("test-admin"), "/content") == 200

        body = complaint_body(1)  # merchant m-1
        body["customer"]["customer_id"] = who
        body["evidence_ids"] = [evidence_id]
        assert (await post_complaint(client, platform.url("intake"), body)).status_code == 201

        expected = {
            "storefront": (STOREFRONT.headers(), 200),
            "storefront naming the customer": ({**STOREFRONT.headers(), "X-Customer-ID": who}, 200),
            "storefront naming another customer": (
                {**STOREFRONT.headers(), "X-Customer-ID": "cust-someone-else"},
                404,
            ),
            "other storefront": (OTHER_STOREFRONT.headers(), 404),
            "the complaint's merchant": (MERCHANT.headers(), 200),
            "other merchant": (OTHER_MERCHANT.headers(), 404),
            "agent": (bearer("test-agent"), 403),
            "admin": (bearer("test-admin"), 200),
        }
        for label, (headers, status) in expected.items():
            for path in ("", "/content"):
                assert await status_of(headers, path) == status, (label, path)
        merchant_view = await client.get(url, headers=MERCHANT.headers())
        assert merchant_view.json()["filename"] is None, "merchants do not see file names"
        download = await client.get(f"{url}/content", headers=MERCHANT.headers())
        assert download.content == JPEG

    async def test_agents_and_unauthenticated_callers_cannot_upload(self, platform, client):
        assert (
            await upload(client, platform, customer(), headers=bearer("test-agent"))
        ).status_code == 403
        assert (
            await upload(client, platform, customer(), headers={"X-Request": "anon"})
        ).status_code == 401


class TestRefusals:
    """Each bad input: a 4xx problem saying what was wrong, and no row and no file after it."""

    CASES = {
        "not an accepted format": (
            {
                "content": b"<html><script>alert(1)</script></html>" * 10,
                "content_type": "image/jpeg",
                "filename": "x.jpg",
            },
            415,
            "not an accepted format",
        ),
        "spoofed content type": (
            {
                "kind": "receipt",
                "content": PDF,
                "content_type": "image/png",
                "filename": "receipt.png",
            },
            415,
            "declared as image/png but its content is application/pdf",
        ),
        "a format the kind does not take": (
            {"kind": "video", "content": PNG, "content_type": "image/png"},
            415,
            "video evidence does not take",
        ),
        "too big": (
            {"content": JPEG[:20] + b"\x00" * (10 * MIB + 1 - 20)},
            413,
            "image/jpeg may be at most 10 MiB",
        ),
        "empty file": ({"content": b""}, 422, "the file is empty"),
        "unknown kind": ({"kind": "selfie"}, 422, "unknown evidence kind 'selfie'"),
    }

    @pytest.mark.parametrize("case", list(CASES))
    async def test_a_refused_upload_leaves_nothing_stored(
        self, platform, client, admin_db, case: str
    ):
        arguments, status, words = self.CASES[case]
        who = customer()
        files_before = stored_files(platform)
        response = await upload(client, platform, who, **arguments)
        assert_problem(response, status, words)
        assert await evidence_rows(admin_db, who) == []
        assert stored_files(platform) == files_before

    RAW_CASES = {
        "missing file part": (
            multipart(("kind", None, None, b"photo"), ("customer_id", None, None, b"{who}")),
            422,
            "the form has no file part",
        ),
        "file before the fields": (
            multipart(("file", "a.jpg", "image/jpeg", JPEG), ("kind", None, None, b"photo")),
            422,
            "form field kind is missing",
        ),
        "two files": (
            multipart(
                ("kind", None, None, b"photo"),
                ("customer_id", None, None, b"{who}"),
                ("file", "a.jpg", "image/jpeg", JPEG),
                ("file", "b.jpg", "image/jpeg", JPEG),
            ),
            400,
            "must be the last one",
        ),
        "body cut inside the file": (
            multipart(
                ("kind", None, None, b"photo"),
                ("customer_id", None, None, b"{who}"),
                ("file", "a.jpg", "image/jpeg", JPEG),
                close=False,
            )[:-500],
            400,
            "the upload is cut",
        ),
        "file field without a file": (
            multipart(
                ("kind", None, None, b"photo"),
                ("customer_id", None, None, b"{who}"),
                ("file", None, None, b"just text"),
            ),
            422,
            "must be a file",
        ),
        "unexpected field": (
            multipart(("kind", None, None, b"photo"), ("note", None, None, b"hi")),
            422,
            "unexpected form field 'note'",
        ),
    }

    @pytest.mark.parametrize("case", list(RAW_CASES))
    async def test_a_malformed_form_leaves_nothing_stored(
        self, platform, client, admin_db, case: str
    ):
        template, status, words = self.RAW_CASES[case]
        who = customer()
        files_before = stored_files(platform)
        response = await post_raw(client, platform, template.replace(b"{who}", who.encode()))
        assert_problem(response, status, words)
        assert await evidence_rows(admin_db, who) == []
        assert stored_files(platform) == files_before

    async def test_a_body_that_is_not_a_form_is_415(self, platform, client):
        response = await post_raw(client, platform, b'{"kind": "photo"}', "application/json")
        assert_problem(response, 415, "multipart/form-data")

    async def test_a_customer_other_than_the_named_one_is_refused(self, platform, client):
        headers = {**STOREFRONT.headers(), "X-Customer-ID": "cust-named"}
        response = await upload(client, platform, customer(), headers=headers)
        assert_problem(response, 422, "X-Customer-ID")


class TestHousekeeping:
    async def test_uploads_no_complaint_took_are_purged_file_and_row(
        self, platform, client, admin_db, monkeypatch
    ):
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        from intake_service import config, storage
        from intake_service.main import SPEC, purge_orphan_evidence
        from services.catalog import BY_NAME

        assert purge_orphan_evidence in SPEC.maintenance, "the maintenance pass runs the purge"
        who, kept_customer = customer(), customer()
        orphan = (await upload(client, platform, who)).json()["evidence_id"]
        kept = (await upload(client, platform, kept_customer)).json()["evidence_id"]
        body = complaint_body(1)
        body["customer"]["customer_id"] = kept_customer
        body["evidence_ids"] = [kept]
        assert (await post_complaint(client, platform.url("intake"), body)).status_code == 201
        (orphan_row,) = await evidence_rows(admin_db, who)
        orphan_file = evidence_directory(platform) / orphan_row["storage_key"]
        assert orphan_file.exists()

        # The job as the intake process runs it (its role, its storage), a day and more later.
        monkeypatch.setenv("INTAKE_EVIDENCE_LOCAL_DIRECTORY", str(evidence_directory(platform)))
        config.get_settings.cache_clear()
        storage.evidence_storage.cache_clear()
        engine = create_async_engine(platform.stack.config.service_database_url(BY_NAME["intake"]))
        try:
            async with async_sessionmaker(engine)() as session, session.begin():
                purged = await purge_orphan_evidence(session, utcnow() + timedelta(hours=25))
        finally:
            await engine.dispose()
            config.get_settings.cache_clear()
            storage.evidence_storage.cache_clear()
        assert purged >= 1
        assert await evidence_rows(admin_db, who) == []
        assert not orphan_file.exists()
        assert [str(row["id"]) for row in await evidence_rows(admin_db, kept_customer)] == [kept]
        gone = await client.get(
            f"{platform.url('intake')}/v1/evidence/{orphan}", headers=STOREFRONT.headers()
        )
        assert gone.status_code == 404

    async def test_erasing_a_customers_evidence_deletes_the_content_and_keeps_the_record(
        self, platform, client, admin_db
    ):
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        from intake_service.service import erase_customer_evidence
        from intake_service.storage import LocalDirectoryStorage

        who = customer()
        evidence_id = (await upload(client, platform, who)).json()["evidence_id"]
        (row,) = await evidence_rows(admin_db, who)
        engine = create_async_engine(platform.stack.admin_sqlalchemy_url())
        try:
            async with async_sessionmaker(engine)() as session, session.begin():
                erased = await erase_customer_evidence(
                    session, LocalDirectoryStorage(evidence_directory(platform)), who
                )
        finally:
            await engine.dispose()
        assert erased == 1
        assert not (evidence_directory(platform) / row["storage_key"]).exists()
        (after,) = await evidence_rows(admin_db, who)
        assert after["erased_at"] is not None
        assert after["original_filename"] is None
        url = f"{platform.url('intake')}/v1/evidence/{evidence_id}"
        assert (await client.get(url, headers=STOREFRONT.headers())).status_code == 200
        assert_problem(
            await client.get(f"{url}/content", headers=STOREFRONT.headers()), 410, "erased"
        )
