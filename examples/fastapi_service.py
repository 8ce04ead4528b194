"""An example model service whose every prediction lands in the modelwatch log contract.

    pip install fastapi uvicorn
    MODELWATCH_EXAMPLE_LOGS=/tmp/service-logs uvicorn --factory examples.fastapi_service:create_app
    curl -s localhost:8000/v1/predict -H 'content-type: application/json' \
         -d '{"age": 41, "income": 52000, "region": "north"}'
    python -m monitoring stats --logs /tmp/service-logs

The middleware times each request and records its status; the endpoint attaches the
prediction, score and features to the request's log record.
"""

from __future__ import annotations

import math
import os

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from monitoring.logger import PredictionLogger, PredictionLoggingMiddleware, current_request

MODEL_VERSION = "2026.11-a"


class Applicant(BaseModel):
    age: int = Field(ge=18, le=120)
    income: float = Field(ge=0)
    region: str


def score(a: Applicant) -> float:
    """A stand-in for a real model: a logistic score of age and income."""
    z = -3.0 + 0.02 * a.age + 0.00003 * a.income + (0.4 if a.region == "north" else 0.0)
    return 1 / (1 + math.exp(-z))


def create_app(log_dir: str | None = None, **logger_options) -> FastAPI:
    logger = PredictionLogger(log_dir or os.environ.get("MODELWATCH_EXAMPLE_LOGS", "service_logs"),
                              model_name="credit-risk", model_version=MODEL_VERSION, **logger_options)
    app = FastAPI(title="credit-risk")
    app.add_middleware(PredictionLoggingMiddleware, logger=logger, exclude=("/healthz",))
    app.state.prediction_logger = logger

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.post("/v1/predict")
    def predict(applicant: Applicant) -> dict:
        r = current_request()
        r.features = applicant.model_dump()
        if applicant.region == "unknown":
            raise HTTPException(status_code=422, detail="region not served")
        r.score = score(applicant)
        r.prediction = "reject" if r.score >= 0.5 else "accept"
        return {"prediction": r.prediction, "score": r.score, "request_id": r.request_id}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=8000)
