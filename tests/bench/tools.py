"""The load generators and profiler the bench needs: found, installed, or explained.

- wrk (closed-loop throughput): the Debian package; installed with apt-get when root.
- vegeta (open-loop constant rate): `go install` of a pinned version into a cache dir.
- py-spy (flame graphs for `make profile`): pip-installed into the project's venv.

`python -m tests.bench.tools` ensures all three and prints where they are.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"
PY_SPY_REQUIREMENT = "py-spy>=0.3"
CACHE_BIN = (
    Path(os.environ.get("COMPLAINTS_CACHE_DIR", Path.home() / ".cache" / "complaints-platform"))
    / "bin"
)
GO_CANDIDATES = ("go", "/usr/local/go/bin/go")


class ToolMissingError(RuntimeError):
    """A tool is missing and could not be installed here; the message says how to get it."""


@dataclass(frozen=True)
class Tools:
    """Paths of the executables the bench runs."""

    wrk: Path
    vegeta: Path


def _is_root() -> bool:
    return os.geteuid() == 0


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    print(f"bench tools: $ {' '.join(command)}", flush=True)
    return subprocess.run(command, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


def ensure_wrk() -> Path:
    """wrk on PATH, or apt-installed when root (apt-get update once if the first try fails)."""
    found = shutil.which("wrk")
    if found:
        return Path(found)
    if not _is_root() or shutil.which("apt-get") is None:
        raise ToolMissingError(
            "wrk is not installed. Install it with `sudo apt-get install -y wrk` "
            "(Debian/Ubuntu) or build it from https://github.com/wg/wrk, then rerun."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if _run(["apt-get", "install", "-y", "-q", "wrk"], env=env).returncode != 0:
        _run(["apt-get", "update", "-q"], env=env)
        if _run(["apt-get", "install", "-y", "-q", "wrk"], env=env).returncode != 0:
            raise ToolMissingError("apt-get install wrk failed; see the output above")
    found = shutil.which("wrk")
    if not found:
        raise ToolMissingError("wrk was installed but is not on PATH")
    return Path(found)


def _go() -> str | None:
    for candidate in GO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def ensure_vegeta() -> Path:
    """The pinned vegeta, built once with `go install` into the cache dir."""
    target_dir = CACHE_BIN / f"vegeta-{VEGETA_VERSION}"
    binary = target_dir / "vegeta"
    if binary.exists():
        return binary
    go = _go()
    if go is None:
        raise ToolMissingError(
            f"vegeta is not installed and Go was not found. Install Go (https://go.dev/dl/, "
            f"or `apt-get install golang`), then rerun; or put a vegeta {VEGETA_VERSION} "
            f"binary at {binary}."
        )
    target_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(target_dir), "CGO_ENABLED": "0"}
    result = _run([go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"], env=env)
    if result.returncode != 0 or not binary.exists():
        raise ToolMissingError(
            f"`go install {VEGETA_MODULE}@{VEGETA_VERSION}` failed (see above); "
            "the Go module proxy must be reachable (GOPROXY)."
        )
    return binary


def ensure_py_spy() -> Path:
    """py-spy in the venv that runs the bench (pip-installed there if missing)."""
    venv_bin = Path(sys.executable).parent
    candidate = venv_bin / "py-spy"
    if candidate.exists():
        return candidate
    found = shutil.which("py-spy")
    if found:
        return Path(found)
    if sys.prefix == sys.base_prefix:
        raise ToolMissingError(
            f"py-spy is not installed; run `pip install '{PY_SPY_REQUIREMENT}'` "
            "(the bench does it by itself only inside a virtualenv)."
        )
    result = _run([sys.executable, "-m", "pip", "install", "-q", PY_SPY_REQUIREMENT])
    if result.returncode != 0 or not candidate.exists():
        raise ToolMissingError(f"pip install '{PY_SPY_REQUIREMENT}' failed; see above")
    return candidate


def ensure_load_tools() -> Tools:
    """wrk and vegeta, installing them when possible; every missing tool is named at once."""
    found: dict[str, Path] = {}
    problems: list[str] = []
    for name, ensure in (("wrk", ensure_wrk), ("vegeta", ensure_vegeta)):
        try:
            found[name] = ensure()
        except ToolMissingError as exc:
            problems.append(f"- {exc}")
    if problems:
        raise ToolMissingError(
            "the bench needs tools it could not install:\n" + "\n".join(problems)
        )
    return Tools(wrk=found["wrk"], vegeta=found["vegeta"])


def main() -> None:
    """Ensures every bench tool and prints where each is."""
    try:
        tools = ensure_load_tools()
        py_spy = ensure_py_spy()
    except ToolMissingError as exc:
        raise SystemExit(str(exc)) from None
    print(f"wrk     {tools.wrk}")
    print(f"vegeta  {tools.vegeta}")
    print(f"py-spy  {py_spy}")


if __name__ == "__main__":
    main()
