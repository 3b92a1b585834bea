"""The bench's knobs, read once from the environment (BENCH_*)."""

import os
from dataclasses import dataclass

# Services on 28001-28004 and the raw baseline on 28100: beside `make up` and the tests.
BENCH_PORT_OFFSET = 20_000
RAW_PORT = 28_100


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


@dataclass(frozen=True)
class BenchSettings:
    """How long and how hard each phase runs."""

    quick: bool
    # Closed loop (wrk): intake alone vs the raw endpoint.
    wrk_seconds: int
    wrk_connections: int
    wrk_threads: int
    wrk_rounds: int
    # Open loop (vegeta): intake latency at constant rates, with the platform running.
    latency_seconds: int
    latency_rates: tuple[int, ...]
    # The cost run: a rate the pipeline keeps up with, drained, for CPU per complaint.
    cost_rate: int
    cost_seconds: int
    # The sustained pipeline run.
    sustain_seconds: int
    sustain_rate: int
    # Data growth.
    seed_rows: int
    growth_reads: int
    # Which phases run (all by default), e.g. BENCH_PHASES=raw,latency.
    phases: tuple[str, ...]

    @classmethod
    def from_env(cls) -> "BenchSettings":
        """BENCH_QUICK=1 shortens every phase; each BENCH_* knob overrides its default."""
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
        phase_seconds = 10 if quick else 60
        phases = tuple(
            name.strip()
            for name in os.environ.get("BENCH_PHASES", ",".join(ALL_PHASES)).split(",")
            if name.strip()
        )
        unknown = [name for name in phases if name not in ALL_PHASES]
        if unknown:
            raise SystemExit(f"unknown BENCH_PHASES {unknown}; known: {', '.join(ALL_PHASES)}")
        return cls(
            quick=quick,
            wrk_seconds=_int("BENCH_WRK_SECONDS", 5 if quick else 20),
            wrk_connections=_int("BENCH_WRK_CONNECTIONS", 32),
            wrk_threads=_int("BENCH_WRK_THREADS", 2),
            wrk_rounds=_int("BENCH_WRK_ROUNDS", 1 if quick else 2),
            latency_seconds=_int("BENCH_LATENCY_SECONDS", phase_seconds // 2 if quick else 30),
            latency_rates=tuple(
                int(rate) for rate in os.environ.get("BENCH_LATENCY_RATES", "100,200").split(",")
            ),
            cost_rate=_int("BENCH_COST_RATE", 25),
            cost_seconds=_int("BENCH_COST_SECONDS", 10 if quick else 20),
            sustain_seconds=_int("BENCH_SUSTAIN_SECONDS", phase_seconds),
            sustain_rate=_int("BENCH_SUSTAIN_RATE", 300),
            seed_rows=_int("BENCH_SEED_ROWS", 50_000 if quick else 1_000_000),
            growth_reads=_int("BENCH_GROWTH_READS", 500 if quick else 2000),
            phases=phases,
        )


# In the order they run: growth first, on a database nothing else has written to yet.
ALL_PHASES = ("growth", "raw", "latency", "sustain")
