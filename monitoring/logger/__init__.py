"""Write prediction logs in the modelwatch contract from a service: `monitoring.logger`.

    from monitoring.logger import PredictionLogger

    logger = PredictionLogger("logs/", model_name="credit", model_version="v3")
    with logger.request(endpoint="/v1/predict", features=row) as r:
        r.prediction, r.score = model.predict(row)

Importing this package loads pyarrow and the standard library only (no DuckDB, Polars or
Streamlit), so a service can depend on it without the dashboard. See docs/logger.md.
"""

from .asgi import PredictionLoggingMiddleware
from .compaction import compact, drop_superseded
from .ids import new_id
from .record import RequestRecord, current_request
from .writer import PredictionLogger

__all__ = [
    "PredictionLogger",
    "PredictionLoggingMiddleware",
    "RequestRecord",
    "compact",
    "current_request",
    "drop_superseded",
    "new_id",
]
