"""Label drift from the late labels file: the true values, joined to the logs by request id.

When the labels come in a file of their own (`labels` / `MONITORING_LABELS`, columns named
in `[labels]`, `monitoring.quality.ground_truth`), the `label` compared with the reference is the
file's label of each request (the file wins over a `label` column in the logs, as on the
quality pages), compared by value: classification labels as their canonical text (1, 1.0
and "1" are one class), a regression's as numbers. Requests without a label are nulls: late
labels leave the newest chunks with fewer values, and so wider chance bands.

    late = late_labels(ws)     # None without a labels file; LabelsError when it is unusable
    side = logs_side(source, filters, "current", late=late)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..logs.workspace import Workspace
from ..quality.ground_truth import as_number, canon, file_labels_sql, open_labels, task_of

CTE = "late_labels"
ID_COL = "__mw_late_id"
LABEL_COL = "__mw_late_label"


@dataclass(frozen=True)
class LateLabels:
    sql: str            # SELECT <id>, <label> FROM the labels file, one row per request
    params: dict[str, Any]
    label_expr: str     # over the joined rows: the file's label, else the logs' own
    kind: str           # "categorical" (classification) | "numeric" (regression)
    path: str
    cte: str = CTE
    id_col: str = ID_COL

    def compared(self, expr: str, typ: str) -> str:
        """A reference file's own label in the same compared form."""
        return (as_number if self.kind == "numeric" else canon)(expr, typ)


def late_labels(ws: Workspace) -> LateLabels | None:
    """The configured labels file ready to join, or None when there is none."""
    lf = open_labels(ws.config, ws.con)
    if lf is None:
        return None
    regression = task_of(ws) == "regression"
    value = as_number if regression else canon
    sql, params = file_labels_sql(lf, value, id_as=ID_COL, label_as=LABEL_COL)
    own = "NULL"
    if ws.source.has("label"):
        own = value("label", ws.source.types.get("label", ""))
    return LateLabels(sql=sql, params=params, label_expr=f"coalesce({LABEL_COL}, {own})",
                      kind="numeric" if regression else "categorical", path=", ".join(lf.paths))
