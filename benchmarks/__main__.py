"""``python -m benchmarks``: the same command as ``citytwin bench``."""

from benchmarks.cli import main

main(prog_name="python -m benchmarks")
