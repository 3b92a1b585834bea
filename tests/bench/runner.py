"""`make bench`: every figure of the throughput-and-latency issue, from one run.

Phases, in order, on a private database and topic prefix (tests/support/stack.py):

1. growth   reads by id, by number and a customer's history at ~empty vs 1M complaints,
            with their plans (no service running).
2. raw      intake alone vs the raw asyncpg endpoint (tests/bench/raw_intake.py), both
            driven by the same wrk script, alternating; only intake is started.
3. cost     the four services running; 25/s, a rate they keep up with, until all is
            acknowledged: CPU per complaint of each service, and of Postgres and the broker.
4. latency  the four services running; vegeta posts at 100/s and 200/s (open loop): intake
            p99 from vegeta, received -> acknowledged from the databases.
5. sustain  300/s for 60 s: acknowledgement rate, every complaint acknowledged?, time for
            consumer lag and outbox backlog to reach zero after the load stops, and CPU per
            acknowledged complaint of the four service processes from /proc.

Not a test: nothing asserts a time. A phase that fails is recorded as an error and the
others still run; bench-results/latest.json always has every required key (null when its
phase gave no figure). Knobs: tests/bench/settings.py and the README's Benchmark section.
"""

import asyncio
import contextlib
import dataclasses
import json
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from services.catalog import BY_NAME
from shared.events.topics import all_topic_names
from shared.messaging.kafka import delete_topics, ensure_topics
from tests.bench import growth, pipeline, procs, raw_intake, report
from tests.bench.settings import BENCH_PORT_OFFSET, RAW_PORT, BenchSettings
from tests.bench.tools import ToolMissingError, Tools, ensure_load_tools
from tests.bench.vegeta import Attack, attack_size, run_attack
from tests.bench.wrk import WrkResult, run_wrk
from tests.support.auth import auth_test_env
from tests.support.platform import Platform, running_platform
from tests.support.stack import REPO_ROOT, StackUnderTest, stack_under_test

RESULTS_DIR = REPO_ROOT / "bench-results"
WARM_RATE = 50
WARM_SECONDS = 3


def bench_service_env(group_suffix: str) -> Callable[[str], dict[str, str]]:
    """Services with their default settings, in consumer groups of their own.

    Own groups: a test run elsewhere on the broker shares the default group ids, and its
    members joining or leaving would rebalance the bench's consumers mid-measurement.
    """

    def env(name: str) -> dict[str, str]:
        prefix = BY_NAME[name].env_prefix
        return {
            # The bench's storefront posts far beyond a production storefront's rate limit.
            **auth_test_env(),
            f"{prefix}ENVIRONMENT": "test",
            f"{prefix}CONSUMER_GROUP": f"{name}-service{group_suffix}",
        }

    return env


def log_errors(platform: Platform) -> dict[str, int]:
    """Error lines each service logged during the phase."""
    return {
        name: sum(map(_is_error_line, platform.logs(name).splitlines()))
        for name in platform.processes
    }


def _is_error_line(line: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("level") in ("error", "critical")


# --- phase: intake alone vs raw ------------------------------------------------------


def _stored(admin_dsn: str, schema: str, prefix: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(admin_dsn)
        try:
            query = f"SELECT count(*) FROM {schema}.complaints WHERE correlation_id LIKE $1 || '%'"
            return int(await conn.fetchval(query, prefix))
        finally:
            await conn.close()

    return asyncio.run(count())


def _wrk_round(
    tools: Tools,
    endpoint: tuple[str, int, str],
    settings: BenchSettings,
    token: str,
    phase: str,
    admin_dsn: str,
) -> dict[str, Any]:
    url, pid, schema = endpoint
    before = procs.cpu_seconds(pid)
    result = run_wrk(
        tools.wrk,
        url,
        seconds=settings.wrk_seconds,
        connections=settings.wrk_connections,
        threads=settings.wrk_threads,
        token=token,
        phase=phase,
    )
    cpu = procs.cpu_seconds(pid) - before
    return {
        **result.as_dict(),
        # At least `ok`: requests in flight when wrk stopped may be stored too; fewer means
        # replays (keys not unique) and the throughput would be a lie.
        "stored": _stored(admin_dsn, schema, f"{phase}.{token}."),
        "cpu_ms_per_ok_request": round(cpu * 1000 / result.ok, 3) if result.ok else None,
    }


def _rate(runs: list[dict[str, Any]]) -> float:
    ok = sum(int(run["ok"]) for run in runs)
    return ok / sum(float(run["duration_s"]) for run in runs)


async def _wait_outbox_empty(admin_dsn: str, schema: str, timeout_s: float) -> dict[str, Any]:
    conn = await asyncpg.connect(admin_dsn)
    try:
        started = time.monotonic()
        query = f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
        left = int(await conn.fetchval(query))
        at_stop = left
        while left and time.monotonic() - started < timeout_s:
            await asyncio.sleep(0.5)
            left = int(await conn.fetchval(query))
        return {
            "backlog_at_load_stop": at_stop,
            "left": left,
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        await conn.close()


def phase_raw(
    stack: StackUnderTest, tools: Tools, settings: BenchSettings, token: str
) -> dict[str, Any]:
    """Closed-loop throughput of intake alone and of the raw endpoint, same wrk script."""
    log_dir = REPO_ROOT / ".run" / "bench-logs" / stack.run_id
    admin_dsn = stack.admin_dsn()
    with (
        running_platform(
            stack,
            port_offset=BENCH_PORT_OFFSET,
            label="bench",
            services=["intake"],
            service_env=bench_service_env(f"-bench-{stack.run_id}"),
        ) as platform,
        procs.raw_endpoint(stack.admin_dsn(), port=RAW_PORT, pool_size=10, log_dir=log_dir) as raw,
    ):
        endpoints = {
            "raw": (raw.base_url, raw.pid, raw_intake.SCHEMA),
            "intake": (platform.url("intake"), platform.processes["intake"].pid or 0, "intake"),
        }
        for name, (url, _pid, _schema) in endpoints.items():
            run_wrk(
                tools.wrk,
                url,
                seconds=2,
                connections=8,
                threads=1,
                token=token,
                phase=f"warm{name}",
            )
        healthz: dict[str, WrkResult] = {
            name: run_wrk(
                tools.wrk,
                url,
                mode="get",
                seconds=min(5, settings.wrk_seconds),
                connections=settings.wrk_connections,
                threads=settings.wrk_threads,
            )
            for name, (url, _pid, _schema) in endpoints.items()
        }
        runs: dict[str, list[dict[str, Any]]] = {"raw": [], "intake": []}
        for round_index in range(settings.wrk_rounds):
            # Alternate who goes first so a drift in the machine's load hits both alike.
            order = ["raw", "intake"] if round_index % 2 == 0 else ["intake", "raw"]
            for name in order:
                # Intake's relay publishing the previous run's events would take CPU from
                # whichever endpoint runs next: start each run with its outbox empty.
                quiet = asyncio.run(_wait_outbox_empty(admin_dsn, "intake", 60))
                run = _wrk_round(
                    tools, endpoints[name], settings, token, f"{name}{round_index}", admin_dsn
                )
                run["intake_outbox_before"] = quiet
                runs[name].append(run)
                if run["stored"] < run["ok"]:
                    print(
                        f"raw phase: WARNING {name} stored {run['stored']} complaints for "
                        f"{run['ok']} successful POSTs: keys were replayed, the rate is wrong",
                        flush=True,
                    )
                print(
                    f"raw phase: {name:<6} round {round_index + 1}: {run['ok_per_s']:.0f} ok/s, "
                    f"p99 {run['latency_ms']['p99']:.1f} ms, errors {run['errors']}",
                    flush=True,
                )
        # Whatever intake has not published yet must not reach the next phase's topics.
        outbox = asyncio.run(_wait_outbox_empty(stack.admin_dsn(), "intake", 120))
        errors = log_errors(platform)
    raw_rate, intake_rate = _rate(runs["raw"]), _rate(runs["intake"])
    return {
        "raw_per_s": round(raw_rate, 1),
        "intake_per_s": round(intake_rate, 1),
        "ratio": round(intake_rate / raw_rate, 3) if raw_rate else None,
        "wrk": {
            "seconds": settings.wrk_seconds,
            "connections": settings.wrk_connections,
            "threads": settings.wrk_threads,
            "rounds": settings.wrk_rounds,
        },
        "runs": runs,
        "healthz_baseline": {name: result.as_dict() for name, result in healthz.items()},
        "intake_outbox_after": outbox,
        "service_log_errors": errors,
    }


# --- phases with the whole platform -------------------------------------------------


@contextlib.contextmanager
def fresh_topics(stack: StackUnderTest, label: str) -> Iterator[StackUnderTest]:
    """The stack on a topic prefix of its own: no earlier phase's events in its topics."""
    prefix = f"{stack.config.topic_prefix}{label}."
    names = all_topic_names(prefix)
    config = stack.config
    asyncio.run(ensure_topics(config.kafka_bootstrap, names, partitions=config.partitions))
    try:
        yield replace(stack, config=replace(config, topic_prefix=prefix))
    finally:
        asyncio.run(delete_topics(config.kafka_bootstrap, names))


@dataclasses.dataclass
class PipelineRun:
    """What the pipeline phases share."""

    platform: Platform
    admin: asyncpg.Connection
    backlog: pipeline.Backlog
    tools: Tools
    token: str
    workdir: Path

    async def attack(self, phase: str, rate: int, seconds: int) -> tuple[Attack, dict[str, Any]]:
        """Posts at a constant rate; returns the attack and vegeta's figures."""
        attack = Attack(phase=phase, token=self.token, count=attack_size(rate, seconds))
        result = await asyncio.to_thread(
            run_attack,
            self.tools.vegeta,
            self.platform.url("intake"),
            attack,
            rate=rate,
            seconds=seconds,
            workdir=self.workdir,
        )
        return attack, result.as_dict()

    async def settle(
        self, attack: Attack, sent: int, *, drain_timeout_s: float, ack_timeout_s: float
    ) -> dict[str, Any]:
        """After the load: time to drain, the storefront's retries, every acknowledgement."""
        drain = await self.backlog.time_to_zero(drain_timeout_s)
        retry = await pipeline.storefront_retry(
            self.admin, self.platform.url("intake"), attack, sent
        )
        prefix = f"{attack.phase}.{attack.token}."
        found = await pipeline.wait_acknowledged(self.admin, prefix, sent, ack_timeout_s)
        return {
            "sent": sent,
            **found.summary(),
            "all_acknowledged": len(found.acknowledged) >= sent,
            "storefront_retry": retry,
            "drain": drain,
        }


async def _pipeline_phases(
    platform: Platform,
    stack: StackUnderTest,
    group_suffix: str,
    tools: Tools,
    settings: BenchSettings,
    token: str,
) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    admin = await asyncpg.connect(stack.admin_dsn())
    try:
        async with pipeline.Backlog(
            admin, stack.config.kafka_bootstrap, stack.config.topic_prefix, group_suffix
        ) as backlog:
            with tempfile.TemporaryDirectory(prefix="bench-vegeta-") as tmp:
                run = PipelineRun(platform, admin, backlog, tools, token, Path(tmp))
                attack, result = await run.attack("warm", WARM_RATE, WARM_SECONDS)
                await run.settle(attack, result["requests"], drain_timeout_s=60, ack_timeout_s=60)
                detail["cost"] = await _cost(run, settings)
                if "latency" in settings.phases:
                    detail["latency"] = await _latency(run, settings)
                if "sustain" in settings.phases:
                    detail["sustain"] = await _sustain(run, settings)
    finally:
        await admin.close()
    return detail


INFRA_COMMANDS = frozenset({"postgres", "java"})


async def _cost(run: PipelineRun, settings: BenchSettings) -> dict[str, Any]:
    """CPU per complaint at a rate the pipeline keeps up with, counted until all is drained.

    Under overload (the sustain phase) CPU divided by what was acknowledged in the window
    mixes in the backlog; here every complaint offered is acknowledged before CPU is read.
    Postgres and the broker (java) are counted apart: they share the machine's cores.
    """
    pids = {name: process.pid or 0 for name, process in run.platform.processes.items()}
    before, infra_before = procs.cpu_snapshot(pids), procs.cpu_by_command(INFRA_COMMANDS)
    attack, vegeta = await run.attack("cost", settings.cost_rate, settings.cost_seconds)
    settled = await run.settle(attack, vegeta["requests"], drain_timeout_s=60, ack_timeout_s=120)
    after, infra_after = procs.cpu_snapshot(pids), procs.cpu_by_command(INFRA_COMMANDS)
    acknowledged = settled["acknowledged"]
    services = {name: after[name] - before[name] for name in pids}
    infra = procs.cpu_delta_by_command(infra_before, infra_after)

    def per_complaint(seconds: float) -> float | None:
        return round(seconds * 1000 / acknowledged, 3) if acknowledged else None

    figure = per_complaint(sum(services.values()))
    print(
        f"cost phase: {settings.cost_rate}/s for {settings.cost_seconds} s, all acknowledged: "
        f"{settled['all_acknowledged']}; CPU {figure} ms/complaint (4 services), "
        f"postgres {per_complaint(infra.get('postgres', 0.0))}, "
        f"broker {per_complaint(infra.get('java', 0.0))} ms/complaint",
        flush=True,
    )
    return {
        "offered_per_s": settings.cost_rate,
        "seconds": settings.cost_seconds,
        "vegeta": vegeta,
        **settled,
        "cpu_seconds": {name: round(value, 2) for name, value in services.items()},
        "cpu_ms_per_complaint": figure,
        "cpu_ms_per_complaint_by_service": {
            name: per_complaint(value) for name, value in services.items()
        },
        "infra_cpu_ms_per_complaint": {
            command: per_complaint(value) for command, value in sorted(infra.items())
        },
    }


async def _latency(run: PipelineRun, settings: BenchSettings) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for rate in settings.latency_rates:
        try:
            attack, vegeta = await run.attack(f"lat{rate}", rate, settings.latency_seconds)
            settled = await run.settle(
                attack, vegeta["requests"], drain_timeout_s=60, ack_timeout_s=120
            )
            results[str(rate)] = {
                "offered_per_s": rate,
                "seconds": settings.latency_seconds,
                "vegeta": vegeta,
                **settled,
            }
            print(
                f"latency phase: {rate}/s: intake p99 {vegeta['latency_ms']['p99']:.1f} ms, "
                f"e2e p50/p99 {settled['e2e_p50_ms']} / {settled['e2e_p99_ms']} ms",
                flush=True,
            )
        except Exception:
            results[str(rate)] = {"error": traceback.format_exc()}
            print(f"latency phase at {rate}/s failed:\n{traceback.format_exc()}", flush=True)
    return results


async def _sustain(run: PipelineRun, settings: BenchSettings) -> dict[str, Any]:
    pids = {name: process.pid or 0 for name, process in run.platform.processes.items()}
    cpu_before = procs.cpu_snapshot(pids)
    attack, vegeta = await run.attack("sustain", settings.sustain_rate, settings.sustain_seconds)
    settled = await run.settle(attack, vegeta["requests"], drain_timeout_s=120, ack_timeout_s=300)
    cpu_after = procs.cpu_snapshot(pids)
    cpu = {name: round(cpu_after[name] - cpu_before[name], 2) for name in pids}
    acknowledged = settled["acknowledged"]
    cpu_ms = sum(cpu.values()) * 1000 / acknowledged if acknowledged else None
    print(
        f"sustain phase: {settled['ack_rate_per_s']}/s acknowledged, all: "
        f"{settled['all_acknowledged']}, drained in {settled['drain'].get('seconds')} s, "
        f"CPU {cpu_ms and round(cpu_ms, 2)} ms/complaint",
        flush=True,
    )
    return {
        "offered_per_s": settings.sustain_rate,
        "seconds": settings.sustain_seconds,
        "vegeta": vegeta,
        **settled,
        "cpu_seconds": cpu,
        "cpu_ms_per_complaint": round(cpu_ms, 3) if cpu_ms is not None else None,
        "cpu_ms_per_complaint_by_service": {
            name: round(seconds * 1000 / acknowledged, 3) if acknowledged else None
            for name, seconds in cpu.items()
        },
    }


def phase_pipeline(
    stack: StackUnderTest, tools: Tools, settings: BenchSettings, token: str, label: str
) -> dict[str, Any]:
    """The four services on topics of their own: latency at constant rates, then sustain."""
    group_suffix = f"-bench-{stack.run_id}-{label}"
    with (
        fresh_topics(stack, label) as own,
        running_platform(
            own,
            port_offset=BENCH_PORT_OFFSET,
            label="bench",
            service_env=bench_service_env(group_suffix),
        ) as platform,
    ):
        detail = asyncio.run(_pipeline_phases(platform, own, group_suffix, tools, settings, token))
        detail["service_log_errors"] = log_errors(platform)
    return detail


# --- the run -------------------------------------------------------------------------


def _figures(detail: dict[str, Any]) -> dict[str, Any]:
    raw = detail.get("raw") or {}
    latency = detail.get("latency") or {}
    sustain = detail.get("sustain") or {}
    cost = detail.get("cost") or {}
    at100, at200 = latency.get("100") or {}, latency.get("200") or {}

    def p99(result: dict[str, Any]) -> float | None:
        return round(result["vegeta"]["latency_ms"]["p99"], 2) if "vegeta" in result else None

    return {
        "intake_vs_raw_ratio": raw.get("ratio"),
        "intake_p99_ms_at_100": p99(at100),
        "intake_p99_ms_at_200": p99(at200),
        "pipeline_sustained_per_s": sustain.get("ack_rate_per_s"),
        "e2e_p50_ms_at_100": at100.get("e2e_p50_ms"),
        "e2e_p99_ms_at_100": at100.get("e2e_p99_ms"),
        # At a rate the pipeline keeps up with, all drained (the cost run); the sustain run's
        # CPU per acknowledged complaint stays in its detail.
        "cpu_ms_per_complaint": cost.get("cpu_ms_per_complaint"),
    }


def _run_phase(detail: dict[str, Any], name: str, phase: Callable[[], dict[str, Any]]) -> None:
    print(f"== phase {name}", flush=True)
    started = time.monotonic()
    try:
        detail.update(phase())
    except Exception:
        detail[name] = {"error": traceback.format_exc()}
        print(f"phase {name} failed:\n{traceback.format_exc()}", flush=True)
    print(f"== phase {name} took {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    """Runs the phases, prints the targets table, saves bench-results/{bench-<time>,latest}.json."""
    settings = BenchSettings.from_env()
    try:
        tools = ensure_load_tools()
    except ToolMissingError as exc:
        raise SystemExit(str(exc)) from None
    token = uuid.uuid4().hex[:6]
    detail: dict[str, Any] = {}
    with stack_under_test() as stack:
        admin_dsn = stack.admin_dsn()
        if "growth" in settings.phases:
            _run_phase(
                detail,
                "growth",
                lambda: {
                    "growth": asyncio.run(
                        growth.run_growth(
                            admin_dsn, seed_rows=settings.seed_rows, reads=settings.growth_reads
                        )
                    )
                },
            )
        if "raw" in settings.phases:
            _run_phase(detail, "raw", lambda: {"raw": phase_raw(stack, tools, settings, token)})
        if {"latency", "sustain"} & set(settings.phases):
            _run_phase(
                detail,
                "pipeline",
                lambda: phase_pipeline(stack, tools, settings, token, "full"),
            )
    figures = _figures(detail)
    saved = report.build_report(
        figures, detail, dataclasses.asdict(settings), settings.sustain_rate
    )
    path = report.save(saved, RESULTS_DIR)
    targets = report.evaluate(figures, detail, settings.sustain_rate)
    print()
    print(report.render_table(targets))
    print()
    if settings.quick:
        print("BENCH_QUICK=1: short phases and a small seed; figures are indicative only.")
    print(f"saved {path.relative_to(REPO_ROOT)} (and bench-results/latest.json)")
