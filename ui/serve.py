"""Start the dashboard: `python -m ui.serve [streamlit run options]` (what `make run` runs).

It is `streamlit run app.py` with one difference: before the server listens, it imports what
the pages compute and draw with and `gc.freeze()`s it (ui/warm.py says why a frozen heap
makes every later collection cheap). Under plain `streamlit run` those imports land in the
first reader's first page (Polars, DuckDB, SQLAlchemy, SciPy, Plotly, pandas and our own
modules: about 1.3 s on this machine, docs/page-speed.md), and the first run's collection
walks all they made. Here the server takes that time before anyone can connect.

Only modules that never need a script run are imported here: third-party libraries and
`monitoring` (which never imports Streamlit); the `ui` modules, which register Streamlit
caches and widgets, are imported by the runs and the warm-up as before.
"""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
_log = logging.getLogger(__name__)


def ahead() -> tuple[str, ...]:
    """The modules imported before serving: what the warm-up would import (ui.warm), but
    only those outside `ui`, the page scripts and Streamlit's own elements."""
    from . import warm

    try:
        pages = warm.page_modules()
    except Exception as exc:   # an unreadable page script says so in its own run, as under streamlit run
        _log.warning("ahead of serving: page scripts not read: %s", exc)
        pages = []
    names = (*warm.DRAWING, *pages, *warm.BACKGROUND)
    return tuple(dict.fromkeys(n for n in names if not n.startswith(("ui", "pages", "streamlit"))))


def preload(names: tuple[str, ...]) -> list[str]:
    """Import `names` (a name that is not a module, or does not import, is skipped: its page
    says what is wrong in its own run); collect and freeze. Returns the names imported."""
    from .warm import import_all

    done = import_all(names, "ahead of serving")
    gc.collect()
    gc.freeze()
    return done


def main(argv: list[str] | None = None) -> int:
    preload(ahead())
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
