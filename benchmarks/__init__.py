"""citytwin's benchmarks: the server against the raw database, measured in the same run.

Run them with ``citytwin bench`` or ``python -m benchmarks`` from a source checkout; see
``benchmarks/README.md``.
"""
