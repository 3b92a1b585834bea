"""`python -m tests.bench`: the whole benchmark (see tests/bench/runner.py)."""

from tests.bench.runner import main

main()
