"""Open-loop load at a constant rate with vegeta: targets file, attack, JSON report."""

import base64
import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.bench.bodies import COMPLAINTS_PATH, complaint_json, correlation_id, idempotency_key
from tests.support.auth import STOREFRONT


@dataclass(frozen=True)
class Attack:
    """What a phase posts: its name (in correlation ids), a run token, and how many."""

    phase: str
    token: str
    count: int

    def headers(self, n: int) -> dict[str, str]:
        """The headers of request n."""
        return {
            "Content-Type": "application/json",
            "X-API-Key": STOREFRONT.secret,
            "Idempotency-Key": idempotency_key(f"{self.phase}-{self.token}", n),
            "X-Correlation-ID": correlation_id(self.phase, self.token, n),
        }

    def body(self, n: int) -> str:
        """The body of request n."""
        return complaint_json(f"{self.phase}-{self.token}", n)


def write_targets(path: Path, base_url: str, attack: Attack) -> None:
    """Writes vegeta's JSON targets: one line per request, each with its own body and key."""
    url = f"{base_url}{COMPLAINTS_PATH}"
    with path.open("w", encoding="utf-8") as out:
        for n in range(attack.count):
            target = {
                "method": "POST",
                "url": url,
                "body": base64.b64encode(attack.body(n).encode()).decode(),
                "header": {name: [value] for name, value in attack.headers(n).items()},
            }
            out.write(json.dumps(target, separators=(",", ":")) + "\n")


@dataclass(frozen=True)
class VegetaResult:
    """vegeta's report of one attack (latencies converted from ns to ms)."""

    requests: int
    rate: float
    throughput: float
    success: float
    duration_s: float
    latency_ms: dict[str, float]
    status_codes: dict[str, int]
    errors: list[str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)


def parse_report(text: str) -> VegetaResult:
    """Reads `vegeta report -type=json`."""
    data = json.loads(text)
    latencies = data["latencies"]
    return VegetaResult(
        requests=int(data["requests"]),
        rate=float(data["rate"]),
        throughput=float(data["throughput"]),
        success=float(data["success"]),
        duration_s=data["duration"] / 1e9,
        latency_ms={
            "mean": latencies["mean"] / 1e6,
            "p50": latencies["50th"] / 1e6,
            "p90": latencies["90th"] / 1e6,
            "p95": latencies["95th"] / 1e6,
            "p99": latencies["99th"] / 1e6,
            "max": latencies["max"] / 1e6,
        },
        status_codes={str(code): int(n) for code, n in (data.get("status_codes") or {}).items()},
        errors=list(data.get("errors") or [])[:10],
    )


def run_attack(
    vegeta: Path, base_url: str, attack: Attack, *, rate: int, seconds: int, workdir: Path
) -> VegetaResult:
    """Posts at `rate`/s for `seconds` (open loop: late responses do not slow the sender)."""
    targets = workdir / f"{attack.phase}-targets.jsonl"
    results = workdir / f"{attack.phase}-results.bin"
    write_targets(targets, base_url, attack)
    command = [
        str(vegeta),
        "attack",
        "-format=json",
        f"-targets={targets}",
        f"-rate={rate}/1s",
        f"-duration={seconds}s",
        "-timeout=10s",
        "-max-body=0",
        f"-name={attack.phase}",
        f"-output={results}",
    ]
    subprocess.run(command, check=True, timeout=seconds + 60)
    report = subprocess.run(
        [str(vegeta), "report", "-type=json", str(results)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return parse_report(report.stdout)


def attack_size(rate: int, seconds: int) -> int:
    """Enough targets that vegeta never wraps around to a used key."""
    return rate * seconds + max(100, rate)
