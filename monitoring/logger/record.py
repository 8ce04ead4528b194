"""One request being logged, and the context variable that exposes it to the code serving it.

    with logger.request(endpoint="/v1/predict", features=row) as r:
        r.prediction, r.score = model.predict(row)

Inside the block (or inside a function under `@logger.logged`, or an ASGI endpoint under the
middleware) `current_request()` returns the same record, so code further down can attach the
prediction, score, label or more features without passing the record around.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .ids import new_id

_time_ns = time.time_ns
_perf_counter_ns = time.perf_counter_ns

if TYPE_CHECKING:
    from .writer import PredictionLogger

log = logging.getLogger("monitoring.logger")
_current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "modelwatch_request", default=None)


def as_features(obj: Any) -> dict[str, Any]:
    """A copy of `obj` as a dict: a mapping, a pydantic model or dataclass-like object with
    `model_dump()`, or pairs. Anything else gives {} and one warning, never an exception."""
    if not obj:
        return {}
    if type(obj) is dict:
        return obj.copy()
    try:
        if isinstance(obj, Mapping):
            return dict(obj)
        if hasattr(obj, "model_dump"):
            return dict(obj.model_dump())
        return dict(obj)
    except (TypeError, ValueError):
        if type(obj).__name__ not in _warned:
            _warned.add(type(obj).__name__)
            log.warning("prediction logger: features must be a dict, got %s: not logged",
                        type(obj).__name__)
        return {}


_warned: set[str] = set()


def current_request() -> RequestRecord | None:
    """The request being logged in this context (thread, task), or None outside one."""
    return _current.get()


class RequestRecord:
    """The row of one request. Set `prediction`, `score`, `label`, `features` (a dict,
    merged with the one given at the start) before the block ends; `request_id` is known from
    the start, e.g. to return it to the client for joining late labels.

    `status` is "ok" unless the block raises (then "error" with `error_type` the exception's
    class name); set them yourself to record a handled failure."""

    __slots__ = ("_logger", "_t0", "_token", "endpoint", "error_type", "features", "label",
                 "prediction", "request_id", "score", "status", "ts_us")

    def __init__(self, logger: PredictionLogger, endpoint: str | None,
                 features: dict[str, Any] | None):
        # The request path: every line here runs once per request in the serving thread.
        self._logger = logger
        self.endpoint = endpoint
        # A copy: the caller may reuse or mutate its dict once the call returns.
        self.features = features.copy() if type(features) is dict else as_features(features)
        self.prediction = self.score = self.label = self.error_type = self._token = None
        self.status = "ok"
        self.ts_us = ts = _time_ns() // 1000
        self.request_id = new_id(ts)
        self._t0 = 0

    def __enter__(self) -> RequestRecord:
        self._token = _current.set(self)
        self._t0 = _perf_counter_ns()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        latency_ms = (_perf_counter_ns() - self._t0) / 1e6
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        if exc_type is not None:
            self.status = "error"
            self.error_type = self.error_type or exc_type.__name__
        self._logger._put((self.request_id, self.ts_us, self.endpoint, latency_ms, self.status,
                           self.error_type, self.prediction, self.score, self.label,
                           self.features or None))
        return False   # exceptions go on to the caller unchanged
