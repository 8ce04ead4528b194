"""Process life of the loggers: flush at exit and on SIGTERM, start afresh in forked children.

- atexit: every open logger is closed (its queue written) when the interpreter exits normally.
- SIGTERM: every open logger writes what it holds, then the previous handler runs: a Python
  handler is called (servers such as uvicorn then drain their requests, which are written at
  exit); the default action is re-raised so the process still ends with SIGTERM's status; an
  ignored SIGTERM stays ignored. The loggers stay open, so requests finishing during a
  graceful shutdown are still logged. The handler is installed once, from the main thread,
  when the first logger is made there (a server that installs its own handler later
  replaces it; its graceful exit still flushes through atexit).
- fork: a child starts with an empty queue and its own writer thread (the parent writes the
  rows it had queued), and draws a new request-id node (ids.py).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from typing import Any

log = logging.getLogger("monitoring.logger")

_loggers: weakref.WeakSet = weakref.WeakSet()
_previous: Any = None
_installed = False


def register(logger: Any, install_signal_handler: bool) -> None:
    _loggers.add(logger)
    if install_signal_handler:
        _install_sigterm()


def unregister(logger: Any) -> None:
    _loggers.discard(logger)


def _close_all() -> None:
    for lg in list(_loggers):
        try:
            lg.close()
        except Exception:  # exiting: report, never raise from atexit
            log.exception("prediction logger: close at exit failed")


def _on_sigterm(signum: int, frame: Any) -> None:
    for lg in list(_loggers):
        try:
            lg.flush()
        except Exception:
            log.exception("prediction logger: flush on SIGTERM failed")
    prev = _previous
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_IGN:
        return
    else:   # SIG_DFL (or unknown): end the process as SIGTERM would have
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm() -> None:
    global _installed, _previous
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        _previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):   # not the main interpreter, or no signals here
        return
    _installed = True


def _after_fork_in_child() -> None:
    for lg in list(_loggers):
        lg._after_fork_in_child()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):   # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
