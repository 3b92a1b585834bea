"""Intake's front door on the real stack: checks, supplements, duplicates, the customer's view.

Every decision is checked where it lands: the HTTP answer, intake's rows, and the event in
intake's outbox (what the other services will read).
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
import pytest

from tests.support.auth import OTHER_STOREFRONT, STOREFRONT, bearer
from tests.support.complaints import complaint_body, order_for, post_complaint
from tests.support.platform import (
    TEST_OPEN_COMPLAINTS_CAP,
    TEST_PORT_OFFSET,
    Platform,
    running_platform,
)
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

NUMBER_PATTERN = r"^\d{6}-\d{6,}$"


def fresh_customer(label: str) -> str:
    """A customer no other test uses."""
    return f"{label}-{uuid.uuid4().hex[:10]}"


def body_for(customer_id: str, n: int = 11, **overrides: Any) -> dict[str, Any]:
    """A complete complaint of `customer_id`."""
    body = complaint_body(n, **overrides)
    body["customer"]["customer_id"] = customer_id
    return body


async def events_of(db: asyncpg.Connection, complaint_id: str) -> list[tuple[str, dict]]:
    """The events intake emitted about a complaint, oldest first, with their payloads."""
    rows = await db.fetch(
        "SELECT event_type, body FROM intake.outbox WHERE message_key = $1 ORDER BY id",
        complaint_id,
    )
    return [(row["event_type"], orjson.loads(row["body"])["payload"]) for row in rows]


async def complaint_rows(db: asyncpg.Connection, customer_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM intake.complaints WHERE customer_id=$1", customer_id
        )
    )


async def view(http: httpx.AsyncClient, platform: Platform, complaint_id: str) -> dict:
    response = await http.get(f"{platform.url('intake')}/v1/complaints/{complaint_id}")
    assert response.status_code == 200, response.text
    return response.json()


class TestCreate:
    async def test_a_complete_complaint_is_received_with_its_promise(self, platform, admin_db):
        async with httpx.AsyncClient(timeout=10) as http:
            response = await post_complaint(
                http, platform.url("intake"), body_for(fresh_customer("c"), channel="chat")
            )
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt["status"] == "received"
        assert receipt["missing"] == []
        assert receipt["rejection"] is None
        received_at = datetime.fromisoformat(receipt["received_at"])
        respond_by = datetime.fromisoformat(receipt["respond_by"])
        assert respond_by - received_at == timedelta(minutes=1), "chat is answered in a minute"
        local_month = received_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y%m")
        assert receipt["complaint_number"].startswith(f"{local_month}-")
        events = await events_of(admin_db, receipt["complaint_id"])
        assert [name for name, _ in events] == ["complaint.received"]
        payload = events[0][1]
        assert payload["order"]["items"][0]["sku"].startswith("SKU-")
        assert payload["customer_flags"] == []

    async def test_hotline_promises_thirty_seconds(self, platform):
        async with httpx.AsyncClient(timeout=10) as http:
            response = await post_complaint(
                http, platform.url("intake"), body_for(fresh_customer("h"), channel="hotline")
            )
        receipt = response.json()
        promise = datetime.fromisoformat(receipt["respond_by"]) - datetime.fromisoformat(
            receipt["received_at"]
        )
        assert promise == timedelta(seconds=30)


class TestNeedsInfo:
    async def test_all_missing_items_are_asked_at_once_and_a_supplement_completes_it(
        self, platform, admin_db
    ):
        customer = fresh_customer("info")
        body = body_for(customer, target="product", demands=[{"type": "exchange"}])
        body["order"] = {"number": f"o-{uuid.uuid4().hex[:8]}"}  # no items, no delivery date
        body["after_sales_reason"] = "damaged"  # a quality problem wants a photo too
        async with httpx.AsyncClient(timeout=10) as http:
            created = await post_complaint(http, platform.url("intake"), body)
            assert created.status_code == 201, created.text
            receipt = created.json()
            assert receipt["status"] == "needs_info"
            assert [m["field"] for m in receipt["missing"]] == [
                "order.items",
                "order.delivered_at",
                "evidence_ids",
            ]
            assert all(m["reason"] for m in receipt["missing"])
            assert receipt["info_due_at"]
            complaint_id = receipt["complaint_id"]
            events = await events_of(admin_db, complaint_id)
            assert [name for name, _ in events] == ["complaint.info_requested"]
            assert len(events[0][1]["missing"]) == 3
            url = f"{platform.url('intake')}/v1/complaints/{complaint_id}/supplements"

            # Part of it: still needs the photo, asked for again.
            partial = await http.post(
                url,
                json={"order": order_for(11, number=body["order"]["number"])},
                headers=STOREFRONT.headers(),
            )
            assert partial.status_code == 200, partial.text
            assert partial.json()["status"] == "needs_info"
            assert [m["field"] for m in partial.json()["missing"]] == ["evidence_ids"]

            evidence_id = await upload_photo(http, platform, customer)
            done = await http.post(
                url,
                json={"evidence_ids": [evidence_id], "note": "photo of the crack attached"},
                headers=STOREFRONT.headers(),
            )
            assert done.status_code == 200, done.text
            assert done.json()["status"] == "received"
            again = await http.post(url, json={"note": "more"}, headers=STOREFRONT.headers())
            assert again.status_code == 409
            assert again.headers["content-type"] == "application/problem+json"

            names = [name for name, _ in await events_of(admin_db, complaint_id)]
            # What is still missing after a partial supplement is asked for again.
            assert names == [
                "complaint.info_requested",
                "complaint.info_supplied",
                "complaint.info_requested",
                "complaint.info_supplied",
                "complaint.received",
            ]

            async def triaged() -> bool:
                answer = await http.get(
                    f"{platform.url('triage')}/v1/complaints/{complaint_id}",
                    headers=bearer("test-admin"),
                )
                return answer.status_code == 200

            await wait_until(triaged, timeout_s=30, what="triage of the completed complaint")
            shown = await view(
                httpx.AsyncClient(timeout=10, headers=bearer("test-admin")), platform, complaint_id
            )
            assert "photo of the crack attached" in shown["description"]
            assert [item["evidence_id"] for item in shown["evidence"]] == [evidence_id]
            codes = [step["code"] for step in shown["timeline"]]
            assert codes[:3] == ["needs_info", "info_supplied", "info_supplied"]


async def upload_photo(http: httpx.AsyncClient, platform: Platform, customer: str) -> str:
    """Uploads a tiny real PNG as the test storefront for `customer`; returns its id."""
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
        b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
        b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    response = await http.post(
        f"{platform.url('intake')}/v1/evidence",
        files={"file": ("crack.png", png, "image/png")},
        data={"kind": "photo", "customer_id": customer},
        headers={**STOREFRONT.headers(), "X-Customer-ID": customer},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["evidence_id"])


class TestRejected:
    async def test_a_return_long_after_delivery_is_recorded_and_rejected_with_an_alternative(
        self, platform, admin_db
    ):
        body = body_for(fresh_customer("late"), demands=[{"type": "return"}, {"type": "refund"}])
        long_ago = datetime.now(UTC) - timedelta(days=40)
        body["order"].update(
            placed_at=(long_ago - timedelta(days=2)).isoformat(), delivered_at=long_ago.isoformat()
        )
        async with httpx.AsyncClient(timeout=10) as http:
            response = await post_complaint(http, platform.url("intake"), body)
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt["status"] == "rejected"
        assert receipt["complaint_number"]  # every complaint is recorded and numbered
        assert receipt["rejection"]["code"] == "after_sales_window_expired"
        assert "40 days after delivery" in receipt["rejection"]["reason"]
        assert "12315" in receipt["rejection"]["alternative"]
        events = await events_of(admin_db, receipt["complaint_id"])
        assert [name for name, _ in events] == ["complaint.rejected"]
        assert events[0][1]["reason_code"] == "after_sales_window_expired"

    async def test_a_repair_without_a_quality_problem_is_declined_as_out_of_scope(self, platform):
        body = body_for(fresh_customer("scope"), demands=[{"type": "repair"}])
        body["after_sales_reason"] = "other"
        async with httpx.AsyncClient(timeout=10) as http:
            response = await post_complaint(http, platform.url("intake"), body)
            receipt = response.json()
            assert receipt["status"] == "rejected"
            assert receipt["rejection"]["code"] == "repair_without_quality_problem"
            shown = await view(
                httpx.AsyncClient(timeout=10, headers=bearer("test-admin")),
                platform,
                receipt["complaint_id"],
            )
        assert shown["visible_state"] == "closed"
        assert shown["rejection"]["alternative"]


class TestDuplicatesAndAbuse:
    async def test_the_same_order_and_target_again_is_linked_not_a_second_case(
        self, platform, admin_db
    ):
        customer = fresh_customer("dup")
        first_body = body_for(customer)
        again = body_for(customer, description="Still broken and nobody answered me!")
        again["order"] = first_body["order"]
        async with httpx.AsyncClient(timeout=10) as http:
            first = await post_complaint(http, platform.url("intake"), first_body)
            second = await post_complaint(http, platform.url("intake"), again)
        assert first.status_code == 201
        assert second.status_code == 200, second.text
        linked = second.json()
        assert linked["duplicate_of_open"] is True
        assert linked["complaint_id"] == first.json()["complaint_id"]
        assert await complaint_rows(admin_db, customer) == 1
        names = [name for name, _ in await events_of(admin_db, linked["complaint_id"])]
        assert names == ["complaint.received", "complaint.linked_duplicate"]
        steps = await admin_db.fetch(
            "SELECT code, details FROM intake.timeline WHERE complaint_id=$1 ORDER BY id",
            uuid.UUID(linked["complaint_id"]),
        )
        assert [s["code"] for s in steps][:2] == ["received", "duplicate_linked"]

    async def test_concurrent_repeats_make_one_complaint(self, platform, admin_db):
        customer = fresh_customer("race")
        body = body_for(customer)
        async with httpx.AsyncClient(timeout=10) as http:
            answers = await asyncio.gather(
                *(post_complaint(http, platform.url("intake"), body) for _ in range(6))
            )
        assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
        assert len({a.json()["complaint_id"] for a in answers}) == 1
        assert await complaint_rows(admin_db, customer) == 1

    async def test_the_open_complaints_cap_is_a_429_problem_and_stores_nothing(
        self, platform, admin_db
    ):
        customer = fresh_customer("cap")
        async with httpx.AsyncClient(timeout=10) as http:
            for n in range(TEST_OPEN_COMPLAINTS_CAP):
                made = await post_complaint(http, platform.url("intake"), body_for(customer, n))
                assert made.status_code == 201, made.text
            refused = await post_complaint(http, platform.url("intake"), body_for(customer, 99))
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["limit"] == TEST_OPEN_COMPLAINTS_CAP
        assert await complaint_rows(admin_db, customer) == TEST_OPEN_COMPLAINTS_CAP

    async def test_a_flagged_account_passes_its_flag_on(self, platform, admin_db):
        customer = fresh_customer("flag")
        admin = bearer("test-admin")
        flags_url = f"{platform.url('intake')}/v1/customers/{customer}/flags/abuse_suspected"
        async with httpx.AsyncClient(timeout=10) as http:
            flagged = await http.put(
                flags_url,
                json={"flag": "abuse_suspected", "reason": "many refunds without returns"},
                headers=admin,
            )
            assert flagged.status_code == 200, flagged.text
            made = await post_complaint(http, platform.url("intake"), body_for(customer))
            listed = await http.get(
                f"{platform.url('intake')}/v1/customers/{customer}/flags", headers=admin
            )
            removed = await http.delete(flags_url, headers=admin)
            gone = await http.delete(flags_url, headers=admin)
        assert [f["flag"] for f in listed.json()] == ["abuse_suspected"]
        assert (removed.status_code, gone.status_code) == (204, 404)
        events = await events_of(admin_db, made.json()["complaint_id"])
        assert events[0][1]["customer_flags"] == ["abuse_suspected"]


class TestCustomersView:
    async def test_the_view_follows_triage_resolution_and_notification(self, platform):
        async with httpx.AsyncClient(timeout=10) as http:
            made = await post_complaint(
                http, platform.url("intake"), body_for(fresh_customer("view"))
            )
            receipt = made.json()
        admin = httpx.AsyncClient(timeout=10, headers=bearer("test-admin"))
        async with admin:

            async def all_steps() -> dict | None:
                shown = await view(admin, platform, receipt["complaint_id"])
                codes = {step["code"] for step in shown["timeline"]}
                wanted = {"received", "triaged", "case_opened", "acknowledgement_sent"}
                return shown if wanted <= codes else None

            shown = await wait_until(all_steps, timeout_s=30, what="the whole timeline")
            by_number = await admin.get(
                f"{platform.url('intake')}/v1/complaints/by-number/{receipt['complaint_number']}"
            )
        assert shown["visible_state"] == "processing"
        assert shown["next_step"]["step"] == "first_response"
        assert shown["next_step"]["due_at"]
        assert all(step["summary_zh"] and step["summary_en"] for step in shown["timeline"])
        assert by_number.status_code == 200
        assert by_number.json()["complaint_id"] == receipt["complaint_id"]

    async def test_history_filters_and_pages_with_a_cursor(self, platform):
        customer = fresh_customer("crm")
        async with httpx.AsyncClient(timeout=10) as http:
            made = [
                (await post_complaint(http, platform.url("intake"), body_for(customer, n))).json()
                for n in range(3)
            ]
            other = await post_complaint(
                http,
                platform.url("intake"),
                body_for(customer, 4),
                **OTHER_STOREFRONT.headers(),
            )
            assert other.status_code == 201
            withdrawn = await http.post(
                f"{platform.url('intake')}/v1/complaints/{made[0]['complaint_id']}/withdrawal",
                json={"reason": "sorted it out with the shop"},
                headers=STOREFRONT.headers(),
            )
            assert withdrawn.status_code == 200, withdrawn.text
            assert withdrawn.json()["visible_state"] == "closed"
            url = f"{platform.url('intake')}/v1/customers/{customer}/complaints"
            first = await http.get(url, params={"limit": 2}, headers=STOREFRONT.headers())
            assert first.status_code == 200, first.text
            page = first.json()
            second = await http.get(
                url,
                params={"limit": 2, "cursor": page["next_cursor"]},
                headers=STOREFRONT.headers(),
            )
            closed = await http.get(
                url, params={"visible_state": "closed"}, headers=STOREFRONT.headers()
            )
            everything = await http.get(url, headers={**bearer("test-admin")})
            broken = await http.get(
                url, params={"cursor": "not-a-cursor"}, headers=STOREFRONT.headers()
            )
        # The test storefront sees its three, newest first, over two pages; not the other's.
        listed = [i["complaint_id"] for i in page["items"] + second.json()["items"]]
        assert listed == [m["complaint_id"] for m in reversed(made)]
        assert second.json()["next_cursor"] is None
        assert [i["complaint_id"] for i in closed.json()["items"]] == [made[0]["complaint_id"]]
        assert len(everything.json()["items"]) == 4
        assert broken.status_code == 422
        assert broken.headers["content-type"] == "application/problem+json"

    async def test_a_withdrawn_complaint_cannot_be_withdrawn_again(self, platform, admin_db):
        async with httpx.AsyncClient(timeout=10) as http:
            made = (
                await post_complaint(http, platform.url("intake"), body_for(fresh_customer("w")))
            ).json()
            url = f"{platform.url('intake')}/v1/complaints/{made['complaint_id']}/withdrawal"
            first = await http.post(url, json={}, headers=STOREFRONT.headers())
            second = await http.post(url, json={}, headers=STOREFRONT.headers())
        assert (first.status_code, second.status_code) == (200, 409)
        names = [name for name, _ in await events_of(admin_db, made["complaint_id"])]
        assert names == ["complaint.received", "complaint.withdrawn"]


class TestErasure:
    async def test_erasure_redacts_the_complaints_keeps_them_and_tells_every_service(
        self, platform, admin_db
    ):
        customer = fresh_customer("erase")
        first_body = body_for(customer, 21)
        async with httpx.AsyncClient(timeout=10) as http:
            first = (await post_complaint(http, platform.url("intake"), first_body)).json()
            repeat = body_for(customer, 21, description="my phone is 13912345678, call me")
            repeat["order"] = first_body["order"]
            await post_complaint(http, platform.url("intake"), repeat)
            second = (
                await post_complaint(http, platform.url("intake"), body_for(customer, 22))
            ).json()
            erased = await http.post(
                f"{platform.url('intake')}/v1/customers/{customer}/erasure",
                headers=STOREFRONT.headers(),
            )
            assert erased.status_code == 200, erased.text
            assert erased.json()["complaints_redacted"] == 2
            again = await http.post(
                f"{platform.url('intake')}/v1/customers/{customer}/erasure",
                headers=STOREFRONT.headers(),
            )
            assert again.json()["complaints_redacted"] == 0
        rows = await admin_db.fetch(
            "SELECT contact, description, erased_at FROM intake.complaints WHERE customer_id=$1",
            customer,
        )
        assert len(rows) == 2, "the complaints stay"
        for row in rows:
            contact = orjson.loads(row["contact"])
            assert set(contact) == {"preferred_channel"}
            assert "broken" not in row["description"]
            assert row["erased_at"] is not None
        quoted = await admin_db.fetchval(
            "SELECT count(*) FROM intake.timeline WHERE complaint_id=$1 AND details::text "
            "LIKE '%13912345678%'",
            uuid.UUID(first["complaint_id"]),
        )
        assert quoted == 0
        for made in (first, second):
            names = [name for name, _ in await events_of(admin_db, made["complaint_id"])]
            assert names[-1] == "customer.erased"
        async with httpx.AsyncClient(timeout=10, headers=bearer("test-admin")) as admin:
            shown = await view(admin, platform, first["complaint_id"])
        assert shown["erased"] is True
        assert shown["contact"] is None


class TestBadInput:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            (
                lambda b: b.update(occurred_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()),
                "occurred_at",
            ),
            (
                lambda b: b["order"].update(
                    placed_at=datetime.now(UTC).isoformat(),
                    delivered_at=(datetime.now(UTC) - timedelta(days=9)).isoformat(),
                ),
                "order",
            ),
            (lambda b: b.update(channel="carrier_pigeon"), "channel"),
            (lambda b: b.update(after_sales_reason="bored"), "after_sales_reason"),
            (lambda b: b.update(target="weather"), "target"),
            (lambda b: b["order"]["items"][0].update(quantity=0), "order.items.0.quantity"),
            (lambda b: b.update(evidence_ids=["not-a-uuid"]), "evidence_ids.0"),
            (lambda b: b.update(description="x" * 5001), "description"),
        ],
    )
    async def test_each_is_a_422_problem_naming_it_and_stores_nothing(
        self, platform, admin_db, change, field
    ):
        customer = fresh_customer("bad")
        body = body_for(customer)
        change(body)
        async with httpx.AsyncClient(timeout=10) as http:
            response = await post_complaint(http, platform.url("intake"), body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        fields = [error["field"] for error in response.json()["errors"]]
        assert any(f.startswith(field) for f in fields), fields
        assert await complaint_rows(admin_db, customer) == 0

    async def test_unknown_complaints_and_numbers_are_404_problems(self, platform):
        async with httpx.AsyncClient(timeout=10, headers=bearer("test-admin")) as http:
            base = platform.url("intake")
            answers = [
                await http.get(f"{base}/v1/complaints/by-number/190001-000001"),
                await http.post(
                    f"{base}/v1/complaints/{uuid.uuid4()}/supplements", json={"note": "hello"}
                ),
                await http.post(f"{base}/v1/complaints/{uuid.uuid4()}/withdrawal", json={}),
            ]
            malformed = await http.get(f"{base}/v1/complaints/by-number/2024-5")
            empty = await http.post(f"{base}/v1/complaints/{uuid.uuid4()}/supplements", json={})
        assert [a.status_code for a in answers] == [404, 404, 404]
        assert malformed.status_code == 422
        assert empty.status_code == 422


class TestNumberingWithTwoReplicas:
    async def test_64_concurrent_creates_across_two_replicas_are_unique_and_increasing(
        self, platform, stack
    ):
        # A second intake process on the same database and topics, as a second replica.
        with running_platform(
            stack, port_offset=TEST_PORT_OFFSET + 100, label="replica", services=["intake"]
        ) as replica:
            urls = [platform.url("intake"), replica.url("intake")]

            async def client(index: int) -> list[str]:
                numbers = []
                async with httpx.AsyncClient(timeout=30) as http:
                    for k in range(8):
                        body = body_for(fresh_customer(f"num{index}"), index * 8 + k)
                        made = await post_complaint(http, urls[index % 2], body)
                        assert made.status_code == 201, made.text
                        numbers.append(made.json()["complaint_number"])
                return numbers

            per_client = await asyncio.gather(*(client(i) for i in range(8)))
        numbers = [n for taken in per_client for n in taken]
        assert len(numbers) == 64
        assert len(set(numbers)) == 64
        for taken in per_client:
            assert taken == sorted(taken, key=sequence_of), "increasing for each client"
        assert len({n.split("-")[0] for n in numbers}) == 1, "one month"
        # Nothing else numbers complaints meanwhile and nothing failed: no number is skipped.
        sequences = sorted(sequence_of(n) for n in numbers)
        assert sequences[-1] - sequences[0] == 63


def sequence_of(number: str) -> int:
    """The sequence part of YYYYMM-NNNNNN."""
    return int(number.split("-")[1])
