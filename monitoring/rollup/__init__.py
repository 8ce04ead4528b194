"""Rollups: mergeable aggregates of the logs in Parquet, rebuilt file by file.

    from monitoring.rollup import build, read, features
    build.update(config)                       # or: python -m monitoring rollup update
    store = read.open_store(config)
    read.latency_hist(store, con, filters, 3600, source=source)

Modules: `tables` (the tables and their SQL, shared by both engines), `store` (layout and
manifest), `build` (build, update, status), `duck` and `spark` (the engines), `read`
(traffic and latency readers), `features` (drift table readers), `cli`. See docs/rollups.md.
"""
