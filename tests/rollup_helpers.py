"""Shared by the store-against-raw tests: a workspace on some logs with its store built."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace
from monitoring.rollup import build, read


def built_workspace(logs: Path, data: Path, toml: str = ""):
    """(config, workspace, store) for `logs` with the data folder `data` (and `toml` as the
    config file beside it), the store built and checked against the workspace's source."""
    cfg_path = None
    if toml:
        cfg_path = data.parent / f"{data.name}.toml"
        cfg_path.write_text(toml)
    cfg = replace(load_config(str(cfg_path) if cfg_path else None, {"logs": str(logs)}), data_dir=str(data))
    ws = open_workspace(cfg)
    build.build(cfg, con=ws.con)
    store = read.open_store(cfg)
    store.check(ws.source)
    return cfg, ws, store
