"""Errors: error rate over time against the objective, by type and by version."""

import polars as pl
import streamlit as st

from monitoring import charts
from monitoring.metrics.status import error_breaches
from monitoring.query.filters import BUCKETS
from ui import data, panels, sidebar

st.title("Errors")
view = sidebar.require("timestamp", "status")
slo = view.ws.config.slo
s = data.window(view)
w = s.window

c = st.columns(3)
c[0].metric("Error rate", panels.fmt_pct(w.error_rate), help=f"Objective: at most {slo.error_rate:.0%}")
c[1].metric("Failed requests", f"{w.errors:,}")
c[2].metric("All requests", f"{w.requests:,}")

panels.time_chart(view, charts.error_rate_line(s.buckets, slo.error_rate), "err_line")
over = error_breaches(s.buckets, slo)
if over.height:
    worst = over.sort("error_rate", descending=True).row(0, named=True)
    st.warning(f"Error rate significantly above {slo.error_rate:.0%} in {over.height} bucket(s); worst "
               f"{worst['error_rate']:.1%} at {worst['time']:%Y-%m-%d %H:%M} UTC "
               f"({worst['errors']:,} of {worst['requests']:,}).")

types = data.error_types(view.ws, view.fingerprint, view.filters, view.bucket)
if types.height == 0:
    st.success("No failed requests in this window.")
    st.stop()
panels.time_chart(view, charts.errors_by_type(types, BUCKETS[view.bucket], (w.start, w.end)), "err_types")
cols = st.columns(2)
totals = types.group_by("error_type").agg(pl.col("errors").sum()).sort("errors", descending=True)
cols[0].markdown("**By error type**")
cols[0].dataframe(totals.with_columns((pl.col("errors") / w.errors).alias("share")), hide_index=True,
                  column_config={"share": st.column_config.NumberColumn("share", format="percent")})
by_version = data.by_dimension(view.ws, view.fingerprint, view.filters, "model_version")
cols[1].markdown("**By version**")
cols[1].dataframe(by_version.select(pl.col("key").alias("version"), "requests", "errors", "error_rate"),
                  hide_index=True,
                  column_config={"error_rate": st.column_config.NumberColumn("error rate", format="percent")})
