"""`make bench`: complaints posted concurrently through the real platform.

Prints and saves intake throughput, p50/p99 intake latency and p50/p99 end-to-end latency
(POST sent -> acknowledgement recorded by notification). A GET /healthz round trip measured
in the same run is the baseline: the machine is shared and noisy, so ratios travel better
than absolute figures. Not a test: nothing here asserts a time.

Env: BENCH_COMPLAINTS (per round, default 500), BENCH_ROUNDS (3), BENCH_CONCURRENCY (32).
"""

import asyncio
import json
import os
import platform as host
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.support.complaints import complaint_body
from tests.support.platform import Platform, running_platform
from tests.support.stack import REPO_ROOT, stack_under_test

BENCH_PORT_OFFSET = 20_000
RESULTS_DIR = REPO_ROOT / "bench-results"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of the values."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def baseline_healthz_ms(client: httpx.AsyncClient, url: str, n: int = 300) -> float:
    """Median latency of a trivial request to the same server: the noise floor."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(f"{url}/healthz")
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return statistics.median(samples)


async def one_round(
    platform: Platform,
    client: httpx.AsyncClient,
    admin: asyncpg.Connection,
    n: int,
    concurrency: int,
) -> dict[str, float]:
    """Posts n complaints with `concurrency` in flight; waits for every acknowledgement."""
    sent_at: dict[uuid.UUID, float] = {}
    intake_ms: list[float] = []
    todo = iter(range(n))
    intake = platform.url("intake")

    async def storefront() -> None:
        for i in todo:
            body = complaint_body(i, description=f"bench complaint {i}: item arrived broken")
            wall = time.time()
            started = time.perf_counter()
            response = await client.post(f"{intake}/v1/complaints", json=body)
            intake_ms.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            sent_at[uuid.UUID(response.json()["complaint_id"])] = wall

    started = time.perf_counter()
    await asyncio.gather(*(storefront() for _ in range(concurrency)))
    intake_seconds = time.perf_counter() - started
    ids = list(sent_at)
    deadline = time.monotonic() + 300
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = await admin.fetch(
            "SELECT complaint_id, recorded_at FROM notification.notifications "
            "WHERE kind = 'acknowledgement' AND status = 'recorded' AND complaint_id = ANY($1)",
            ids,
        )
        if len(rows) == len(ids):
            break
        await asyncio.sleep(0.2)
    if len(rows) != len(ids):
        raise RuntimeError(f"only {len(rows)}/{len(ids)} acknowledged within 300 s")
    flow_seconds = time.perf_counter() - started
    e2e_ms = [
        (row["recorded_at"].timestamp() - sent_at[row["complaint_id"]]) * 1000 for row in rows
    ]
    return {
        "complaints": n,
        "intake_throughput_per_s": n / intake_seconds,
        "intake_p50_ms": percentile(intake_ms, 50),
        "intake_p99_ms": percentile(intake_ms, 99),
        "e2e_p50_ms": percentile(e2e_ms, 50),
        "e2e_p99_ms": percentile(e2e_ms, 99),
        "flow_throughput_per_s": n / flow_seconds,
    }


async def run(platform: Platform, admin_dsn: str) -> dict[str, Any]:
    """Warm-up, baseline, then the measured rounds."""
    n = int(os.environ.get("BENCH_COMPLAINTS", "500"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "32"))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    admin = await asyncpg.connect(admin_dsn)
    try:
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            await one_round(
                platform, client, admin, 50, concurrency
            )  # warm-up: pools, JIT-less paths
            baseline = await baseline_healthz_ms(client, platform.url("intake"))
            results = []
            for index in range(rounds):
                result = await one_round(platform, client, admin, n, concurrency)
                results.append(result)
                print(
                    f"round {index + 1}/{rounds}: "
                    + ", ".join(f"{k}={v:.1f}" for k, v in result.items())
                )
    finally:
        await admin.close()
    medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
    return {
        "benchmark": "intake-to-acknowledgement",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": host.python_version(),
            "system": host.platform(),
        },
        "settings": {"complaints_per_round": n, "rounds": rounds, "concurrency": concurrency},
        "baseline_healthz_p50_ms": baseline,
        "median_of_rounds": medians,
        "ratios_to_baseline": {
            "intake_p50": medians["intake_p50_ms"] / baseline,
            "intake_p99": medians["intake_p99_ms"] / baseline,
            "e2e_p50": medians["e2e_p50_ms"] / baseline,
        },
        "rounds": results,
    }


def main() -> None:
    """Runs the benchmark on a private database and topics, prints and saves the figures."""
    with (
        stack_under_test() as stack,
        running_platform(stack, port_offset=BENCH_PORT_OFFSET, label="bench") as platform,
    ):
        report = asyncio.run(run(platform, stack.admin_dsn()))
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS_DIR / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    m, b = report["median_of_rounds"], report["baseline_healthz_p50_ms"]
    print()
    print(f"baseline GET /healthz p50       {b:8.2f} ms")
    print(f"intake throughput               {m['intake_throughput_per_s']:8.1f} complaints/s")
    print(
        f"intake latency p50 / p99        {m['intake_p50_ms']:8.2f} / {m['intake_p99_ms']:.2f} ms"
        f"   ({m['intake_p50_ms'] / b:.1f}x baseline at p50)"
    )
    print(f"end-to-end to ack p50 / p99     {m['e2e_p50_ms']:8.2f} / {m['e2e_p99_ms']:.2f} ms")
    print(f"whole-flow throughput           {m['flow_throughput_per_s']:8.1f} complaints/s")
    print(f"saved {Path(path).relative_to(REPO_ROOT)} (and bench-results/latest.json)")


if __name__ == "__main__":
    main()
