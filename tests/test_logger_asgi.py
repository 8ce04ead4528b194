"""The ASGI middleware on a real FastAPI app (run by its TestClient), and the example service."""

from __future__ import annotations

import asyncio
import time
import warnings
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException, Request

with warnings.catch_warnings():   # Starlette 1.x asks for httpx2 in its TestClient; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from examples.fastapi_service import create_app
from monitoring.logger import PredictionLogger, PredictionLoggingMiddleware, current_request
from tests.logger_helpers import health_of, read_rows

SLEEP_S = 0.03


def make_app(logger: PredictionLogger, **options) -> FastAPI:
    app = FastAPI()
    app.add_middleware(PredictionLoggingMiddleware, logger=logger, **options)

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    @app.post("/sync/{item_id}")
    def sync_predict(item_id: int, body: dict):
        r = current_request()
        r.features = {"item": item_id, **body}
        r.prediction, r.score = "yes", 0.75
        return {"request_id": r.request_id}

    @app.post("/async")
    async def async_predict(request: Request, body: dict):
        r = request.state.prediction_log          # the same record as current_request()
        assert r is current_request()
        r.features = body
        await asyncio.sleep(SLEEP_S)
        r.prediction = 3
        return {"ok": True}

    @app.get("/slow")
    def slow():
        time.sleep(SLEEP_S)
        r = current_request()   # None when the middleware does not log this path
        if r is not None:
            r.prediction = 1
        return {}

    @app.get("/missing")
    def missing():
        raise HTTPException(status_code=404, detail="no such thing")

    @app.get("/crash")
    def crash():
        current_request().features = {"item": -1}
        raise RuntimeError("model not loaded")

    @app.get("/handled")
    def handled():
        r = current_request()
        r.status, r.error_type, r.prediction = "error", "fallback_model", 0
        return {}

    return app


# (method, path, json body, HTTP code, status, error_type, endpoint recorded)
CALLS = [
    ("post", "/sync/7", {"x": 1.5}, 200, "ok", None, "/sync/{item_id}"),
    ("post", "/async", {"x": 2.5}, 200, "ok", None, "/async"),
    ("get", "/slow", None, 200, "ok", None, "/slow"),
    ("get", "/missing", None, 404, "error", "http_404", "/missing"),
    ("post", "/sync/notanint", {"x": 1}, 422, "error", "http_422", "/sync/{item_id}"),
    ("get", "/crash", None, 500, "error", "RuntimeError", "/crash"),
    ("get", "/handled", None, 200, "error", "fallback_model", "/handled"),
    ("get", "/no/such/route", None, 404, "error", "http_404", "/no/such/route"),
]


@pytest.fixture
def served(tmp_path):
    logger = PredictionLogger(tmp_path / "logs", "m", "v1", flush_rows=10**9, flush_seconds=10**6,
                              install_signal_handler=False)
    client = TestClient(make_app(logger, exclude=("/healthz",)), raise_server_exceptions=False)
    return logger, client, tmp_path


def test_middleware_records_status_latency_and_endpoint(served):
    logger, client, tmp_path = served
    walls = {}
    for method, path, body, code, *_ in CALLS:
        t0 = time.perf_counter()
        resp = client.request(method, path, json=body)
        walls[path] = (time.perf_counter() - t0) * 1000
        assert resp.status_code == code, (path, resp.text)
    assert client.get("/healthz").status_code == 200   # excluded: not logged
    logger.close()
    rows = read_rows(tmp_path / "logs").to_pylist()
    assert len(rows) == len(CALLS)
    got = sorted((r["endpoint"], r["status"], r["error_type"]) for r in rows)
    assert got == sorted((e, s, t) for _, _, _, _, s, t, e in CALLS)
    by_endpoint = {r["endpoint"]: r for r in rows}
    for _, path, *_rest, endpoint in CALLS:
        if endpoint in ("/slow", "/async"):
            # The sleeping endpoints took at least their sleep, and never more than the client saw.
            assert SLEEP_S * 1000 <= by_endpoint[endpoint]["latency_ms"] <= walls[path]
    sync = next(r for r in rows if r["endpoint"] == "/sync/{item_id}" and r["status"] == "ok")
    assert (sync["item"], sync["x"], sync["prediction"], sync["score"]) == (7, 1.5, "yes", 0.75)
    assert by_endpoint["/async"]["prediction"] == "3"   # the column is text: "yes" came first
    assert by_endpoint["/crash"]["item"] == -1 and by_endpoint["/crash"]["prediction"] is None
    assert all(r["latency_ms"] >= 0 and r["model_version"] == "v1" for r in rows)


def test_request_id_returned_to_the_client_is_the_logged_one(served):
    logger, client, tmp_path = served
    rid = client.post("/sync/1", json={}).json()["request_id"]
    logger.close()
    assert read_rows(tmp_path / "logs")["request_id"].to_pylist() == [rid]


def test_the_request_id_can_travel_in_a_response_header(tmp_path):
    logger = PredictionLogger(tmp_path / "logs", "m", "v1", install_signal_handler=False)
    client = TestClient(make_app(logger, request_id_header="X-Request-ID", exclude=("/healthz",)))
    ok, missing, health = client.post("/sync/1", json={}), client.get("/missing"), client.get("/healthz")
    logger.close()
    assert ok.headers["x-request-id"] == ok.json()["request_id"]
    assert "x-request-id" not in health.headers   # not logged, no id
    ids = set(read_rows(tmp_path / "logs")["request_id"].to_pylist())
    assert ids == {ok.headers["x-request-id"], missing.headers["x-request-id"]}


@pytest.mark.parametrize(("options", "logged"), [
    ({}, {"/healthz", "/slow"}),
    ({"exclude": ("/healthz",)}, {"/slow"}),
    ({"include": ("/he",)}, {"/healthz"}),
    ({"include": lambda path: path.endswith("z")}, {"/healthz"}),
])
def test_include_and_exclude_choose_the_requests_logged(tmp_path, options, logged):
    logger = PredictionLogger(tmp_path / "logs", "m", "v1", install_signal_handler=False)
    client = TestClient(make_app(logger, **options))
    client.get("/healthz")
    client.get("/slow")
    logger.close()
    assert set(read_rows(tmp_path / "logs")["endpoint"].to_pylist()) == logged


def test_example_service_logs_pass_the_source_checks(tmp_path):
    app = create_app(str(tmp_path / "logs"), flush_rows=7, install_signal_handler=False)
    client = TestClient(app)
    sent = {"ok": 0, "error": 0}
    for i in range(40):
        region = ["north", "south", "unknown"][i % 3]
        resp = client.post("/v1/predict", json={"age": 20 + i, "income": 1000.0 * i, "region": region})
        sent["error" if resp.status_code >= 400 else "ok"] += 1
    assert client.post("/v1/predict", json={"age": 3}).status_code == 422   # invalid body
    sent["error"] += 1
    client.get("/healthz")
    app.state.prediction_logger.close()

    ws, health = health_of(tmp_path / "logs", tmp_path / "data")
    assert health.invalid_rows == {} and health.bad_files == [] and health.warnings == []
    assert health.total_rows == health.valid_rows == sum(sent.values())
    rows = read_rows(tmp_path / "logs").to_pylist()
    assert sum(r["status"] == "error" for r in rows) == sent["error"]
    assert {f.name for f in ws.source.features} == {"age", "income", "region"}
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(r["prediction"] == ("reject" if r["score"] >= 0.5 else "accept") for r in ok)


# -- every page reads the example service's logs -------------------------------------------

PAGES = sorted(f"pages/{p.name}" for p in (Path(__file__).resolve().parent.parent / "pages").glob("*.py"))


@pytest.fixture(scope="module")
def service_logs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("service") / "logs"
    app = create_app(str(out), flush_rows=50, install_signal_handler=False)
    client = TestClient(app)
    for i in range(300):
        region = ["north", "south", "east", "unknown"][i % 4]
        client.post("/v1/predict", json={"age": 20 + i % 60, "income": 500.0 * i, "region": region})
    app.state.prediction_logger.close()
    return out


@pytest.mark.parametrize("page", PAGES)
def test_every_page_reads_the_example_service_logs_with_no_invalid_row(app_env, service_logs, page):
    from tests.test_pages import render

    at = render(app_env(service_logs), page, preset="All data")
    sidebar = " ".join(str(x.value) for x in [*at.sidebar.warning, *at.sidebar.error])
    assert "invalid" not in sidebar.lower() and "unreadable" not in sidebar.lower(), sidebar
