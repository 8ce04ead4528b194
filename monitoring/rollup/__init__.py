"""Rollups: mergeable aggregates of the logs in Parquet, rebuilt file by file.

See docs/rollups.md. Build with `update(config)` (or `python -m monitoring rollup build`),
read with the functions of `monitoring.rollup.read`.
"""
