"""Chance-band simulations kept on disk, so that a restarted server reads them instead of
drawing them again.

    store = for_folder(config.data_dir)      # data_dir/cache/bands/
    sims = store.read(digest)                # {grid step: (quantile, mean)}, {} when none
    store.write(digest, sims)

One small JSON file per column's null model, named by a digest of everything its
simulations depend on (`bands.Bands.digest`: the model, the draws, the quantile, the seed,
numpy's version and the code of `bands.py`), so a file is only ever read for the very
simulation it holds; a change of any input is another file. Floats go through JSON as
their shortest repr, which reads back to the same float: a band read is bit-identical to
the band simulated. Files are written whole under a temporary name and renamed (a reader
never sees half a file); a file that cannot be read or written is a miss, never an error.
At most MAX_FILES files are kept: the oldest go first.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

FORMAT = 1
MAX_FILES = 4096


class BandStore:
    """The band files of one folder (created on the first write)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"BandStore({str(self.folder)!r})"

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest}.json"

    def read(self, digest: str) -> dict[int, tuple[float, float]]:
        """The stored simulations of this digest by grid step; {} when none can be read."""
        try:
            info = json.loads(self._path(digest).read_text(encoding="utf-8"))
            if info.get("format") != FORMAT or info.get("digest") != digest:
                return {}
            return {int(step): (float(q), float(mean)) for step, (q, mean) in info["sims"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def write(self, digest: str, sims: dict[int, tuple[float, float]]) -> None:
        """Store `sims` (with what another process stored meanwhile) under this digest."""
        path = self._path(digest)
        merged = self.read(digest) | sims
        text = json.dumps({"format": FORMAT, "digest": digest,
                           "sims": {str(s): [q, m] for s, (q, m) in sorted(merged.items())}})
        new = not path.exists()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
            if new:
                self._prune()
        except OSError:   # a read-only data folder only costs the simulations next time
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def _prune(self) -> None:
        files = list(self.folder.glob("*.json"))
        if len(files) <= MAX_FILES:
            return

        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return math.inf
        for old in sorted(files, key=mtime)[:len(files) - MAX_FILES]:
            old.unlink(missing_ok=True)


def for_folder(data_dir: str | os.PathLike | None) -> BandStore | None:
    """The band store of a data folder (`data_dir/cache/bands`); None without one."""
    return BandStore(Path(data_dir) / "cache" / "bands") if data_dir else None
