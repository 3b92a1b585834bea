"""Data growth: do reads by id, by number and a customer's history keep their latency at 1M?

Runs on the bench database before any service starts. intake.complaints (built by the
migrations) is seeded with `seed_rows` complaints by server-side INSERT ... SELECT
generate_series, in chunks; a copy of its definition (`CREATE TABLE ... (LIKE ...
INCLUDING ALL)`: same columns, constraints and indexes) gets 2,000: the "empty" database.
The three reads run against both tables interleaved, so a change in the machine's load
hits both alike; each read's plan (EXPLAIN, FORMAT JSON) says whether an index serves it.
Every customer has about ten complaints in both tables, so a history read returns as many
rows either way. Both are emptied at the end, so later phases start from nothing.

The reads are intake's own (by id, as in intake_service/repository.py) and the two an
operator's console needs (by complaint number; a customer's latest 50).
"""

import json
import time
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

from tests.bench.stats import percentile

SMALL_ROWS = 2_000
PER_CUSTOMER = 10
CHUNK = 100_000

# Numbers from period 199901 never meet intake's own (the current month); customers are
# rows / 10, so each has ~10 complaints at any size.
SMALL_TABLE = "bench_growth.complaints"
GROWN_TABLE = "intake.complaints"

SEED = """
INSERT INTO {table} (
    id, complaint_number, customer_id, contact, preferred_contact_channel, order_number,
    merchant_id, channel, target, category_hint, description, demands, product, delivered_at,
    status, received_at, respond_by, correlation_id)
SELECT gen_random_uuid(),
       '199901-' || lpad(g::text, 7, '0'),
       'seed-cust-' || (g % $3::int)::text,
       jsonb_build_object('name', '张三', 'phone', '138' || lpad((g % 100000000)::text, 8, '0'),
                          'email', NULL, 'preferred_channel', 'sms'),
       'sms',
       'seed-order-' || g,
       'm-' || (g % 997),
       (ARRAY['app', 'web', 'chat', 'hotline'])[1 + g % 4],
       'product',
       'product_quality',
       'Item ' || g || ' arrived broken: the glass lid was cracked and the base dented. '
           || 'Asking for return and refund plus a coupon for the trouble.',
       '[{"type": "return", "amount": null, "currency": "CNY"},
         {"type": "refund", "amount": null, "currency": "CNY"},
         {"type": "compensation", "amount": "100", "currency": "CNY"}]'::jsonb,
       '{"name": "Item A", "spec": "1.5L", "quantity": 1}'::jsonb,
       NULL,
       'received',
       now() - make_interval(secs => g % 63072000),
       now() - make_interval(secs => g % 63072000) + interval '1 day',
       'seed.' || g
FROM generate_series($1::bigint, $2::bigint) AS g
"""

READS: dict[str, str] = {
    "by_id": "SELECT * FROM intake.complaints WHERE id = $1",
    "by_number": "SELECT * FROM intake.complaints WHERE complaint_number = $1",
    "customer_history": (
        "SELECT * FROM intake.complaints WHERE customer_id = $1 ORDER BY received_at DESC LIMIT 50"
    ),
}
INDEX_NODES = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


async def _seed(conn: asyncpg.Connection, table: str, first: int, last: int) -> float:
    started = time.perf_counter()
    customers = max(1, (last - first + 1) // PER_CUSTOMER)
    for start in range(first, last + 1, CHUNK):
        end = min(last, start + CHUNK - 1)
        await conn.execute(SEED.replace("{table}", table), start, end, customers)
    await conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


async def _sample_keys(conn: asyncpg.Connection, table: str, n: int) -> dict[str, list[Any]]:
    rows = await conn.fetch(
        f"SELECT id, complaint_number, customer_id FROM {table} ORDER BY random() LIMIT $1", n
    )
    return {
        "by_id": [row["id"] for row in rows],
        "by_number": [row["complaint_number"] for row in rows],
        "customer_history": [row["customer_id"] for row in rows],
    }


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(_plan_nodes(child))
    return nodes


def summarise_plan(explained: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan as one line (`Limit > Index Scan Backward using ix_...`) and its indexes."""
    nodes = _plan_nodes(explained[0]["Plan"])
    parts = []
    for node in nodes:
        text = node["Node Type"]
        if node.get("Scan Direction") == "Backward":
            text += " Backward"
        if node.get("Index Name"):
            text += f" using {node['Index Name']}"
        elif node.get("Relation Name"):
            text += f" on {node['Relation Name']}"
        parts.append(text)
    indexes = [node["Index Name"] for node in nodes if node["Node Type"] in INDEX_NODES]
    return {"plan": " > ".join(parts), "indexes": indexes, "uses_index": bool(indexes)}


async def _timed_reads(statement: PreparedStatement, keys: list[Any]) -> list[float]:
    samples = []
    for key in keys:
        started = time.perf_counter()
        await statement.fetch(key)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _measure(conn: asyncpg.Connection, reads: int) -> dict[str, Any]:
    tables = {"empty": SMALL_TABLE, "grown": GROWN_TABLE}
    keys = {size: await _sample_keys(conn, table, reads) for size, table in tables.items()}
    results: dict[str, Any] = {}
    for name, sql in READS.items():
        statements = {
            size: await conn.prepare(sql.replace("{table}", table))
            for size, table in tables.items()
        }
        samples: dict[str, list[float]] = {size: [] for size in tables}
        for size, statement in statements.items():  # warm caches and prepared statements
            await _timed_reads(statement, keys[size][name][:50])
        # Interleaved in small blocks: drift in the machine's load hits both sizes alike.
        for start in range(0, reads, 25):
            for size, statement in statements.items():
                block = keys[size][name][start : start + 25]
                samples[size].extend(await _timed_reads(statement, block))
        results[name] = {}
        for size, table in tables.items():
            explained = json.loads(
                await conn.fetchval(
                    f"EXPLAIN (FORMAT JSON) {sql.replace('{table}', table)}", keys[size][name][0]
                )
            )
            results[name][size] = {
                "table": table,
                "p50_ms": round(percentile(samples[size], 50), 4),
                "p99_ms": round(percentile(samples[size], 99), 4),
                "reads": len(samples[size]),
                **summarise_plan(explained),
            }
        results[name]["p50_ratio"] = round(
            results[name]["grown"]["p50_ms"] / results[name]["empty"]["p50_ms"], 3
        )
    return results


async def run_growth(admin_dsn: str, *, seed_rows: int, reads: int) -> dict[str, Any]:
    """Times the three reads at ~empty and at `seed_rows`; leaves intake's table empty."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        existing = await conn.fetchval(f"SELECT count(*) FROM {GROWN_TABLE}")
        if existing:
            raise RuntimeError(f"{GROWN_TABLE} already holds {existing} rows")
        await conn.execute(
            "DROP SCHEMA IF EXISTS bench_growth CASCADE; CREATE SCHEMA bench_growth;"
            f"CREATE TABLE {SMALL_TABLE} (LIKE {GROWN_TABLE} INCLUDING ALL)"
        )
        await _seed(conn, SMALL_TABLE, 1, SMALL_ROWS)
        print(f"growth: seeding {seed_rows:,} complaints ...", flush=True)
        seed_seconds = await _seed(conn, GROWN_TABLE, 1, seed_rows)
        size = await conn.fetchval(f"SELECT pg_total_relation_size('{GROWN_TABLE}')")
        reads_summary = await _measure(conn, min(reads, SMALL_ROWS))
        # CASCADE: evidence rows reference complaints (none exist this early in the bench).
        await conn.execute(f"TRUNCATE {GROWN_TABLE} CASCADE; DROP SCHEMA bench_growth CASCADE")
    finally:
        await conn.close()
    return {
        "rows_small": SMALL_ROWS,
        "rows_grown": seed_rows,
        "seed_seconds": round(seed_seconds, 1),
        "seed_rows_per_s": round(seed_rows / seed_seconds),
        "table_bytes_grown": size,
        "reads": reads_summary,
    }
