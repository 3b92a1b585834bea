"""`make profile`: flame graphs of services while wrk drives intake, and their top frames.

Runs the services on a private database and topics (only intake unless a consumer is named),
drives intake with the bench's wrk script, and records each named service with py-spy:
bench-results/flame-<service>.svg (open it in a browser). The top frames by own time and
by total time are printed and written to bench-results/profile-<service>.txt.

Env: PROFILE_SERVICES (comma-separated, default "intake"; e.g. "intake,notification"),
PROFILE_SECONDS (20), PROFILE_RATE (samples per second, 100), PROFILE_CONNECTIONS (32).
"""

import bisect
import itertools
import os
import re
import subprocess
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from html import unescape
from pathlib import Path

from services.catalog import BY_NAME
from tests.bench.runner import RESULTS_DIR, bench_service_env
from tests.bench.settings import BENCH_PORT_OFFSET
from tests.bench.tools import ToolMissingError, ensure_load_tools, ensure_py_spy
from tests.bench.wrk import run_wrk
from tests.support.platform import running_platform
from tests.support.stack import REPO_ROOT, stack_under_test

# inferno (py-spy's flame graph writer) puts each frame's sample counts in fg:x / fg:w.
FRAME = re.compile(
    r'<g><title>(?P<title>[^<]*)</title><rect x="[^"]*" y="(?P<y>[0-9.]+)"[^>]*'
    r'fg:x="(?P<x>\d+)" fg:w="(?P<w>\d+)"'
)
TITLE_COUNTS = re.compile(r"\s*\([\d,]+ samples?, [\d.]+%\)$")
LINE_NUMBER = re.compile(r":\d+\)$")
OWN_CODE = (
    "shared/",
    "intake_service/",
    "triage_service/",
    "resolution_service/",
    "notification_service/",
)


@dataclass(frozen=True)
class Frame:
    """One box of the flame graph: a function at a stack depth over a span of samples."""

    name: str
    depth: float
    x: int
    width: int


def parse_flamegraph(svg: str) -> list[Frame]:
    """The frames of a py-spy SVG."""
    frames = []
    for match in FRAME.finditer(svg):
        name = TITLE_COUNTS.sub("", unescape(match["title"]))
        frames.append(Frame(name, float(match["y"]), int(match["x"]), int(match["w"])))
    return frames


def _function(name: str) -> str:
    """`f (file.py:12)` -> `f (file.py)`: one entry per function, not per line."""
    return LINE_NUMBER.sub(")", name)


@dataclass(frozen=True)
class Profile:
    """Samples per function: own (on top of the stack) and total (anywhere on it)."""

    total: int
    own: dict[str, int]
    inclusive: dict[str, int]

    def top_own(self, limit: int = 20) -> list[tuple[str, float, float]]:
        """Functions ranked by own time: (function, own %, total %)."""
        ranked = sorted(self.own.items(), key=lambda item: item[1], reverse=True)[:limit]
        return [
            (name, 100 * n / self.total, 100 * self.inclusive[name] / self.total)
            for name, n in ranked
        ]

    def top_inclusive(self, markers: tuple[str, ...], limit: int = 15) -> list[tuple[str, float]]:
        """Functions whose location contains a marker, ranked by total time."""
        ours = {name: n for name, n in self.inclusive.items() if any(m in name for m in markers)}
        ranked = sorted(ours.items(), key=lambda item: item[1], reverse=True)[:limit]
        return [(name, 100 * n / self.total) for name, n in ranked]


def build_profile(frames: list[Frame]) -> Profile:
    """Own and total samples per function, from the flame graph's boxes."""
    by_depth: dict[float, list[Frame]] = defaultdict(list)
    for frame in frames:
        by_depth[frame.depth].append(frame)
    if not by_depth:
        return Profile(0, {}, {})
    depths = sorted(by_depth)
    # py-spy draws an icicle: the root ("all") on the top row, callees one row below.
    step = min((b - a for a, b in itertools.pairwise(depths)), default=0.0)
    children: dict[Frame, list[Frame]] = defaultdict(list)
    for depth in depths[1:]:
        parents = sorted(by_depth.get(depth - step, []), key=lambda f: f.x)
        starts = [parent.x for parent in parents]
        for frame in by_depth[depth]:
            index = bisect.bisect_right(starts, frame.x) - 1
            if index >= 0:
                children[parents[index]].append(frame)
    roots = by_depth[depths[0]]
    own: dict[str, int] = defaultdict(int)
    inclusive: dict[str, int] = defaultdict(int)
    # A function counts once per stack in `inclusive` (recursion, or several lines of one
    # function on the same stack, are not counted twice).
    stack: list[tuple[Frame, frozenset[str]]] = [(root, frozenset()) for root in roots]
    while stack:
        frame, above = stack.pop()
        name = _function(frame.name)
        kids = children.get(frame, [])
        own[name] += frame.width - sum(kid.width for kid in kids)
        if name not in above:
            inclusive[name] += frame.width
        stack.extend((kid, above | {name}) for kid in kids)
    own.pop("all", None)
    return Profile(sum(root.width for root in roots), dict(own), dict(inclusive))


def summarise(svg_path: Path, limit: int = 20) -> str:
    """The top frames of a flame graph as text."""
    profile = build_profile(parse_flamegraph(svg_path.read_text(errors="replace")))
    if not profile.total:
        return f"{svg_path.name}: no samples"
    lines = [f"{svg_path.name}: {profile.total} samples; functions by own time"]
    lines.append(f"{'own %':>7} {'total %':>8}  function")
    for name, own_pct, total_pct in profile.top_own(limit):
        lines.append(f"{own_pct:7.1f} {total_pct:8.1f}  {name}")
    lines.append("")
    lines.append("the project's own functions by total time (SQLAlchemy's greenlet stacks")
    lines.append("are separate roots in py-spy, so database work is partly outside these)")
    for name, total_pct in profile.top_inclusive(OWN_CODE):
        lines.append(f"{total_pct:16.1f}  {name}")
    return "\n".join(lines)


def main() -> None:
    """Runs the services, records them under load, writes and summarises the flame graphs."""
    names = [n.strip() for n in os.environ.get("PROFILE_SERVICES", "intake").split(",") if n]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown PROFILE_SERVICES {unknown}; known: {', '.join(BY_NAME)}")
    seconds = int(os.environ.get("PROFILE_SECONDS", "20"))
    rate = int(os.environ.get("PROFILE_RATE", "100"))
    connections = int(os.environ.get("PROFILE_CONNECTIONS", "32"))
    try:
        tools = ensure_load_tools()
        py_spy = ensure_py_spy()
    except ToolMissingError as exc:
        raise SystemExit(str(exc)) from None
    RESULTS_DIR.mkdir(exist_ok=True)
    token = uuid.uuid4().hex[:6]
    started = ["intake"] if names == ["intake"] else None
    with (
        stack_under_test() as stack,
        running_platform(
            stack,
            port_offset=BENCH_PORT_OFFSET,
            label="profile",
            services=started,
            service_env=bench_service_env(f"-profile-{stack.run_id}"),
        ) as platform,
    ):
        intake = platform.url("intake")
        run_wrk(tools.wrk, intake, seconds=3, connections=8, threads=1, token=token, phase="warm")
        recorders = {}
        for name in names:
            svg = RESULTS_DIR / f"flame-{name}.svg"
            command = [
                str(py_spy),
                "record",
                "--pid",
                str(platform.processes[name].pid),
                "--duration",
                str(seconds),
                "--rate",
                str(rate),
                "--output",
                str(svg),
                "--format",
                "flamegraph",
            ]
            recorders[name] = (
                svg,
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
            )
        time.sleep(0.5)  # py-spy attaches before the load starts
        result = run_wrk(
            tools.wrk,
            intake,
            seconds=seconds,
            connections=connections,
            threads=2,
            token=token,
            phase="profile",
        )
        print(f"wrk: {result.ok_per_s:.0f} ok/s, p99 {result.latency_ms['p99']:.1f} ms")
        for name, (svg, recorder) in recorders.items():
            output, _ = recorder.communicate(timeout=seconds + 60)
            if recorder.returncode != 0 or not svg.exists():
                print(f"py-spy failed for {name} ({recorder.returncode}):\n{output.decode()}")
                print("py-spy needs ptrace: run as root, or set kernel.yama.ptrace_scope=0.")
                continue
            text = summarise(svg)
            (RESULTS_DIR / f"profile-{name}.txt").write_text(text + "\n")
            print()
            print(text)
            print(f"flame graph: {svg.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
