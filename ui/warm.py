"""Once per server process: the imports every page needs, then a cheap garbage collector.

Measured in the server (sample logs): Streamlit runs a full `gc.collect()` after every script
run (`runner.postScriptGC`); with scipy, plotly, pandas, SQLAlchemy and Polars loaded that is
about 170k objects and 0.17-0.2 s of every page switch, held under the GIL while the answer
waits to be sent, and up to 0.6 s on a first visit. The objects are almost all modules'
functions, classes and tables, alive until the process ends. So, after the first run has
drawn its page: a background thread imports what the other pages draw with (pandas and
pyarrow for tables, plotly for charts, every page's own modules), collects once and
`gc.freeze()`s what is alive: later collections only look at objects made after that, and
still free them. Every later run first waits for this (`ready()`), so no page imports a
module while the thread does (concurrent first imports raced: PERF_NOTES.md).
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import logging
import sys
import threading
from pathlib import Path

from .shutdown import exiting

PAGES = Path(__file__).resolve().parent.parent / "pages"
# Imported by Streamlit itself on a page's first table or chart, not by our modules.
DRAWING = ("pandas", "pyarrow", "plotly.graph_objects", "plotly.io", "streamlit.elements.arrow",
           "streamlit.elements.plotly_chart")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_log = logging.getLogger(__name__)


def page_modules(pages: Path = PAGES) -> list[str]:
    """The modules the page scripts import (`import x` / `from x import y`), in file order."""
    out: list[str] = []
    for path in sorted(pages.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from ui import data`: ui.data is a module; `from monitoring.fmt import md` is not
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                names = []
            out += [n for n in names if n not in out]
    return out


def _warm(modules: tuple[str, ...]) -> None:
    try:
        for name in modules:
            if exiting():   # the process is ending: nothing left to warm (ui.shutdown)
                return
            try:
                parent, _, _ = name.rpartition(".")
                if parent and parent in sys.modules and not hasattr(sys.modules[parent], "__path__"):
                    continue   # a name defined in a module, not a submodule
                if parent and importlib.util.find_spec(name) is None:
                    continue
                importlib.import_module(name)
            except Exception as exc:   # a page that cannot import says so itself, in its own run
                _log.warning("warm-up: %s not imported: %s", name, exc)
        gc.collect()
        gc.freeze()
    finally:
        _done.set()


def start(modules: tuple[str, ...] | None = None) -> None:
    """Start the warm-up once per process (after the first run has drawn its page)."""
    global _thread
    with _lock:
        if _thread is not None:
            return
        wanted = modules if modules is not None else (*DRAWING, *page_modules())
        _thread = threading.Thread(target=_warm, args=(tuple(m for m in wanted if m not in sys.modules),),
                                   name="modelwatch-warm", daemon=True)
        _thread.start()


def ready(timeout: float = 120.0) -> bool:
    """Wait for a started warm-up to finish; True when none is running any more."""
    return _thread is None or _done.wait(timeout)
