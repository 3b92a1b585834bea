"""Closed-loop throughput with wrk: run it, read the JSON summary its Lua `done` prints."""

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.bench.bodies import BODY_TEMPLATE
from tests.support.auth import STOREFRONT

SCRIPT = Path(__file__).with_name("wrk_complaint.lua")
SUMMARY_MARK = "BENCH_WRK "


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: completed requests, errors, and latency as wrk measured it."""

    target: str
    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def ok(self) -> int:
        """Responses with a 2xx/3xx status (wrk counts other statuses as `status` errors)."""
        return self.requests - self.errors.get("status", 0)

    @property
    def ok_per_s(self) -> float:
        """Successful responses per second."""
        return self.ok / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The run as JSON-able data, with the derived rates."""
        return {**asdict(self), "ok": self.ok, "ok_per_s": round(self.ok_per_s, 1)}


def parse_wrk_output(target: str, stdout: str) -> WrkResult:
    """Reads the `BENCH_WRK {...}` line the Lua `done` callback prints."""
    for line in stdout.splitlines():
        if line.startswith(SUMMARY_MARK):
            data = json.loads(line[len(SUMMARY_MARK) :])
            break
    else:
        raise RuntimeError(f"wrk printed no summary line:\n{stdout}")
    return WrkResult(
        target=target,
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        errors={name: int(count) for name, count in data["errors"].items()},
        latency_ms={name: value / 1000 for name, value in data["latency_us"].items()},
    )


def run_wrk(
    wrk: Path,
    base_url: str,
    *,
    seconds: int,
    connections: int,
    threads: int,
    mode: str = "post",
    token: str = "",
    phase: str = "wrk",
) -> WrkResult:
    """Drives `base_url` for `seconds`: POST unique complaints, or GET /healthz (mode="get")."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        template = Path(tmp) / "complaint.json"
        template.write_text(BODY_TEMPLATE, encoding="utf-8")
        args = (
            ["post", token, phase, str(template), STOREFRONT.secret] if mode == "post" else ["get"]
        )
        command = [
            str(wrk),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            base_url,
            "--",
            *args,
        ]
        completed = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=seconds + 60
        )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr}")
    return parse_wrk_output(base_url if mode == "post" else f"{base_url}/healthz", completed.stdout)
