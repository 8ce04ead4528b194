"""The [rollups] table of monitoring.toml: when the app builds the store in the background.

    [rollups]
    background = "auto"          # auto: when the logs hold at least `auto_rows` rows; on; off
    auto_rows = 5_000_000
    batch_rows = 2_000_000       # rows rolled per pass in the app (the progress bar's step)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config, Setting, at_least, one_of, register_section

SETTINGS: tuple[Setting, ...] = (
    Setting("background", "auto", "Build and update the rollup store in the app's background: auto "
            "(when the logs hold at least auto_rows rows), on, or off.", check=one_of("auto", "on", "off")),
    Setting("auto_rows", 5_000_000, "With background = \"auto\": logs of at least this many rows get a store.",
            check=at_least(1)),
    Setting("batch_rows", 2_000_000, "Rows the background build rolls per pass (files are never split): "
            "the step of the progress bar; larger is a little faster, smaller moves sooner.", check=at_least(1)),
)
register_section("rollups", SETTINGS)


@dataclass(frozen=True)
class RollupSettings:
    background: str = "auto"
    auto_rows: int = 5_000_000
    batch_rows: int = 2_000_000

    def wanted(self, rows: int) -> bool:
        """Whether logs of `rows` rows get a background build."""
        return self.background == "on" or (self.background == "auto" and rows >= self.auto_rows)


def load(config: Config) -> RollupSettings:
    values = {s.key: s.default for s in SETTINGS} | config.section("rollups")
    return RollupSettings(**{k: values[k] for k in ("background", "auto_rows", "batch_rows")})
