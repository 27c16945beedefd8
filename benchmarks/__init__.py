"""Benchmarks for vidcluster (scripts, not tests): `python -m benchmarks [--quick]`.

Each part prints a table and writes JSON to benchmarks/results/ (gitignored). Real data is
read from ../shared/data (or $VIDCLUSTER_DATA); parts that need missing data say so and skip.
"""
