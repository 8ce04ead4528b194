"""Background jobs stand down once the interpreter exits.

At exit Python joins every ThreadPoolExecutor's worker, and the jobs still queued there run
then: a prefetch or an alert evaluation queued by a page computed after the server (or a
test run) had ended, logged through streams already closed ("No runtime found", "Logging
error") and failed on thread pools that take no more work ("cannot schedule new futures
after interpreter shutdown"). `threading` marks the exit before it runs those joins
(`threading._SHUTTING_DOWN`, read only, the flag its own exit hooks go by; Python 3.11 to
3.13), so a job that asks `exiting()` first, and between its parts, ends at once, and says
nothing of a failure the exit caused; a cached call already running then logs nothing either
(Streamlit's caches say "No runtime found" off a script run).
"""

from __future__ import annotations

import logging
import threading


def exiting() -> bool:
    """True once the interpreter has begun to exit (its main thread has finished)."""
    return bool(getattr(threading, "_SHUTTING_DOWN", False)) or not threading.main_thread().is_alive()


class _QuietAtExit(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not exiting()


for _name in ("streamlit.runtime.caching.cache_data_api", "streamlit.runtime.caching.cache_resource_api"):
    logging.getLogger(_name).addFilter(_QuietAtExit())
