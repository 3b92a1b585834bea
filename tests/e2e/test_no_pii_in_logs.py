"""Personal data never reaches a log line, and a NUL byte is a 422, never a 500.

Every personal value any test of the run submits is registered by tests/support/complaints.py
(`complaint_body`, `post_complaint`, `register_pii`). The scan looks for each of them, as
written, JSON-escaped and as UTF-8 bytes, in every log file the run's platforms wrote and in
everything pytest captured (stdout, stderr, log records) while the scan was armed.

Running last: `whole_run_scan` is a session-scoped fixture that every test here uses, so it is
set up with this module's first test and finalised only when the session ends, after every
other test (e2e, chaos) whatever the order of modules; when it is set up before the `platform`
fixture it is also finalised after it, so the services have stopped and their logs are
complete. A hit fails the run as an error at the teardown of the session's last test. While
armed, a small plugin keeps the captured output of every test report.
"""

import copy
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.db import create_engine
from tests.support.complaints import SUBMITTED_PII, complaint_body, post_complaint
from tests.support.platform import Platform
from tests.support.stack import REPO_ROOT, StackUnderTest
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

ACK_DEADLINE_S = 30
SERVICES = ("intake", "triage", "resolution", "notification")


class CapturedOutput:
    """A pytest plugin that keeps what every test report captured (stdout, stderr, logs)."""

    def __init__(self) -> None:
        self.sections: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keeps the captured sections of one test phase."""
        for title, content in report.sections:
            key = f"{report.nodeid} [{title}]"
            self.sections[key] = self.sections.get(key, "") + content


def written_forms(value: str) -> set[str]:
    """How a value may appear in a log: as is, JSON-escaped (\\u5f20), or as UTF-8 bytes."""
    return {value, json.dumps(value)[1:-1], repr(value.encode())[2:-1]}


def trie_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """One regex for many literal words, sharing prefixes: one pass over a long log."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        group = "(?:" + "|".join(branches) + ")"
        return group + "?" if "" in node else group

    return re.compile(build(trie) or "(?!)")


def pii_hits(texts: Mapping[str, str], values: Iterable[str]) -> list[str]:
    """Every (value, source) where a personal value appears in a text."""
    value_of = {form: value for value in values for form in written_forms(value)}
    pattern = trie_pattern(value_of)
    hits: set[str] = set()
    for source, content in texts.items():
        for found in pattern.finditer(content):
            hits.add(f"{value_of[found.group()]!r} in {source}")
    return sorted(hits)


def run_log_files(stack: StackUnderTest) -> dict[str, str]:
    """Every log file this run's platforms wrote (.run/<label>-logs/<run id>/<service>.log)."""
    paths = sorted((REPO_ROOT / ".run").glob(f"*-logs/{stack.run_id}/*.log"))
    return {str(path.relative_to(REPO_ROOT)): path.read_text(errors="replace") for path in paths}


@pytest.fixture(scope="session")
def whole_run_scan(stack: StackUnderTest, request: pytest.FixtureRequest) -> Iterator[None]:
    """Scans everything the whole run wrote for every personal value it submitted, at its end."""
    captured = CapturedOutput()
    request.config.pluginmanager.register(captured, "no-pii-captured-output")
    yield
    request.config.pluginmanager.unregister(captured)
    logs = run_log_files(stack)
    assert logs, "the scan found no service logs for this run"
    hits = pii_hits({**logs, **captured.sections}, SUBMITTED_PII)
    assert not hits, "personal data reached the logs:\n  " + "\n  ".join(hits)


async def acknowledged(http: httpx.AsyncClient, platform: Platform, complaint_id: str) -> bool:
    response = await http.get(f"{platform.url('notification')}/v1/complaints/{complaint_id}")
    if response.status_code != 200:
        return False
    return any(
        n["kind"] == "acknowledgement" and n["status"] == "recorded"
        for n in response.json()["notifications"]
    )


def with_nul(body: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """The body with a NUL byte inside the value at `path` (the value itself stays intact)."""
    changed = copy.deepcopy(body)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = f"{target[path[-1]]}\x00"
    return changed


TEXT_FIELDS = [
    ("customer", "name"),
    ("customer", "phone"),
    ("customer", "email"),
    ("customer", "customer_id"),
    ("description",),
    ("order", "items", 0, "name"),
    ("order", "items", 0, "spec"),
]


@pytest.mark.usefixtures("whole_run_scan")
class TestNoPersonalDataInLogs:
    async def test_a_nul_in_any_text_field_is_a_422_problem_and_stores_nothing(
        self, platform: Platform, http: httpx.AsyncClient, admin_db: asyncpg.Connection
    ):
        body = complaint_body(9001)
        body["order"]["items"][0].update(name="Kettle K-9001", spec="1.7L white")
        before = await admin_db.fetchval("SELECT count(*) FROM intake.complaints")
        for path in TEXT_FIELDS:
            response = await post_complaint(http, platform.url("intake"), with_nul(body, path))
            assert response.status_code == 422, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            errors = response.json()["errors"]
            assert [(e["field"], e["type"]) for e in errors] == [
                (".".join(str(part) for part in path), "control_character")
            ]
        assert await admin_db.fetchval("SELECT count(*) FROM intake.complaints") == before

    async def test_personal_data_never_reaches_the_logs(
        self, platform: Platform, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ):
        body = complaint_body(9002)
        body["customer"]["preferred_channel"] = "email"
        personal = [body["customer"][key] for key in ("name", "phone", "email")]
        assert set(personal) <= SUBMITTED_PII, "complaint_body registers what it submits"
        # A refused attempt too: the NUL request must not leak what came with it either.
        refused = await post_complaint(
            http, platform.url("intake"), with_nul(complaint_body(9003), ("customer", "name"))
        )
        assert refused.status_code == 422
        correlation_id = f"pii-{uuid.uuid4().hex[:10]}"
        response = await post_complaint(
            http, platform.url("intake"), body, **{"X-Correlation-ID": correlation_id}
        )
        assert response.status_code == 201, response.text
        complaint_id = response.json()["complaint_id"]
        await wait_until(
            lambda: acknowledged(http, platform, complaint_id),
            timeout_s=ACK_DEADLINE_S,
            what="acknowledgement",
        )

        async def every_service_logged_the_flow() -> bool:
            return all(correlation_id in platform.logs(name) for name in SERVICES)

        # The logs are teed by reader threads: wait until each service's lines are on disk.
        await wait_until(every_service_logged_the_flow, timeout_s=10, what="log lines")
        logs = {name: platform.logs(name) for name in SERVICES}
        hits = pii_hits({**logs, "pytest log records": caplog.text}, SUBMITTED_PII)
        assert not hits, "personal data reached the logs:\n  " + "\n  ".join(hits)


async def provoke_errors(engine: AsyncEngine, *, email: str, name: str) -> list[DBAPIError]:
    """A duplicate key and a NUL byte, each carried by a statement parameter."""
    errors = []
    async with engine.connect() as conn:
        await conn.execute(text("CREATE TEMPORARY TABLE contact_probe (email text UNIQUE)"))
        await conn.execute(text("INSERT INTO contact_probe VALUES (:email)"), {"email": email})
        with pytest.raises(DBAPIError) as duplicate:
            await conn.execute(text("INSERT INTO contact_probe VALUES (:email)"), {"email": email})
        errors.append(duplicate.value)
        await conn.rollback()
        with pytest.raises(DBAPIError) as nul:
            await conn.execute(text("SELECT CAST(:name AS text)"), {"name": f"{name}\x00"})
        errors.append(nul.value)
    await engine.dispose()
    return errors


async def test_database_errors_never_render_their_parameters(stack: StackUnderTest):
    email, name = f"db-error-{uuid.uuid4().hex[:8]}@example.test", "张测9004"
    url = stack.admin_sqlalchemy_url()
    # Proof the errors do carry the values: SQLAlchemy's defaults would print them.
    shown = await provoke_errors(create_async_engine(url), email=email, name=name)
    assert email in str(shown[0])
    assert name in str(shown[1])

    hidden = await provoke_errors(create_engine(url, pool_size=1), email=email, name=name)
    for error in hidden:
        assert "SQL parameters hidden" in str(error)
    assert email not in str(hidden[0])
    assert name not in str(hidden[1])
    # Postgres itself repeats a duplicate key in the DETAIL of its error, which the asyncpg
    # exception chained under the first one carries into a traceback: personal data must
    # never be part of a unique constraint.


def test_the_scan_finds_every_written_form():
    hits = pii_hits(
        {
            "plain": '{"name": "张测0042"}',
            "escaped": '{"name": "\\u5f20\\u6d4b0043"}',
            "bytes": "params=(b'\\xe5\\xbc\\xa0\\xe6\\xb5\\x8b0044',)",
            "clean": '{"name": "张*"}',
        },
        ["张测0042", "张测0043", "张测0044", "张测0045"],
    )
    assert hits == ["'张测0042' in plain", "'张测0043' in escaped", "'张测0044' in bytes"]


def test_the_log_files_are_found_where_the_platform_writes_them(
    platform: Platform, stack: StackUnderTest
):
    expected = {
        str(Path(process.log_path).relative_to(REPO_ROOT))
        for process in platform.processes.values()
    }
    assert expected <= set(run_log_files(stack))
