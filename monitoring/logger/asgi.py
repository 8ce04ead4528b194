"""ASGI middleware: one log row per HTTP request of a FastAPI / Starlette (any ASGI) service.

    app = FastAPI()
    app.add_middleware(PredictionLoggingMiddleware, logger=logger, exclude=("/healthz",))

    @app.post("/v1/predict")
    def predict(body: Applicant):
        r = current_request()            # or request.state.prediction_log
        r.features = body.model_dump()
        r.prediction, r.score = model.predict(r.features)
        return {"prediction": r.prediction, "request_id": r.request_id}

The middleware records, for every HTTP request it covers: the arrival time, the latency
until the app returned (response fully sent), the endpoint (the matched route's template,
e.g. `/v1/items/{item_id}`, so ids in paths do not make one endpoint per request; the raw
path when no route matched), and the status: "ok" for HTTP codes below 400, else "error"
with `error_type` the exception's class name when the app raised, else `http_<code>`.

The app attaches the prediction, score, label and features to the same record, reachable
two ways that are one object: `current_request()` (a context variable, also usable from
code that does not see the request) and `request.state.prediction_log`. Both work from async
endpoints and from sync ones run in the thread pool (which runs in a copy of the context).
Only the pure ASGI protocol is used: no Starlette import, and streaming responses are timed
to their last byte.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from .record import RequestRecord, _current
from .writer import PredictionLogger


class PredictionLoggingMiddleware:
    """include / exclude: path prefixes (or a predicate on the path) selecting the requests
    logged; by default every HTTP request except those under `exclude`.
    request_id_header: when set (e.g. "x-request-id"), every logged response carries the
    request id in this header, so clients can send late labels for it."""

    def __init__(self, app: Any, logger: PredictionLogger, *,
                 include: Iterable[str] | Callable[[str], bool] | None = None,
                 exclude: Iterable[str] = (), request_id_header: str | None = None):
        self.app = app
        self.logger = logger
        self._header = request_id_header.lower().encode("latin-1") if request_id_header else None
        self._include = include if callable(include) or include is None else tuple(include)
        self._exclude = tuple(exclude)

    def _wanted(self, path: str) -> bool:
        if self._exclude and path.startswith(self._exclude):
            return False
        inc = self._include
        if inc is None:
            return True
        return inc(path) if callable(inc) else path.startswith(inc)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or not self._wanted(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        record = RequestRecord(self.logger, None, None)
        # Starlette's request.state is a view of scope["state"].
        state = scope.setdefault("state", {})
        if isinstance(state, dict):
            state["prediction_log"] = record
        code = 500
        started = False

        async def send_wrapper(message: dict) -> None:
            nonlocal code, started
            if message.get("type") == "http.response.start":
                code = int(message.get("status", 500))
                started = True
                if self._header:
                    message = {**message, "headers": [*message.get("headers", ()),
                                                      (self._header, record.request_id.encode())]}
            await send(message)

        token = _current.set(record)
        t0 = time.perf_counter_ns()
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            error = exc
            raise
        finally:
            latency_ms = (time.perf_counter_ns() - t0) / 1e6
            _current.reset(token)
            route = scope.get("route")
            record.endpoint = getattr(route, "path", None) or scope.get("path")
            if error is not None:
                record.status = "error"
                record.error_type = record.error_type or type(error).__name__
            elif not started or code >= 400:
                record.status = "error"
                record.error_type = record.error_type or f"http_{code}"
            self.logger._put((record.request_id, record.ts_us, record.endpoint, latency_ms,
                              record.status, record.error_type, record.prediction, record.score,
                              record.label, record.features or None))
