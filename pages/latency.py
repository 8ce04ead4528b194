"""Latency: P50/P95/P99 over time against the SLO, the distribution, and per version/endpoint."""

import polars as pl
import streamlit as st

from monitoring import charts
from ui import data, panels, sidebar

st.title("Latency")
view = sidebar.require("timestamp", "latency_ms")
slo = view.ws.config.slo
s = data.window(view)
w = s.window

c = st.columns(4)
c[0].metric("P50", panels.fmt_ms(w.p50))
c[1].metric("P95", panels.fmt_ms(w.p95), help=f"SLO {slo.p95_latency_ms:,.0f} ms")
c[2].metric("P99", panels.fmt_ms(w.p99))
c[3].metric("Successful requests", f"{w.requests - w.errors:,}")
st.caption(f"Percentiles of successful requests, linear interpolation between order statistics; "
           f"method: **{w.method}**.")

st.plotly_chart(charts.percentile_lines(s.buckets, slo.p95_latency_ms), key="lat_lines")
over = s.buckets.filter(pl.col("p95") > slo.p95_latency_ms)
if over.height:
    st.warning(f"P95 above the SLO in {over.height} of {s.buckets.height} buckets, first at "
               f"{over['time'][0]:%Y-%m-%d %H:%M} UTC, last at {over['time'][-1]:%Y-%m-%d %H:%M} UTC.")

st.plotly_chart(charts.latency_distribution(s.hist, slo.p95_latency_ms), key="lat_hist")

st.subheader("By version and endpoint")
cols = st.columns(2)
for col, dim, label in ((cols[0], "model_version", "Version"), (cols[1], "endpoint", "Endpoint")):
    df = data.by_dimension(view.ws, view.fingerprint, view.filters, dim)
    col.markdown(f"**{label}**")
    if df.height == 0 or (dim == "endpoint" and df["key"].null_count() == df.height):
        col.info(f"No {label.lower()} information in these logs.")
        continue
    col.dataframe(
        df.select(pl.col("key").alias(label), "requests", "p50", "p95", "p99"), hide_index=True,
        column_config={k: st.column_config.NumberColumn(k.upper(), format="%.0f ms") for k in ("p50", "p95", "p99")})
    col.plotly_chart(charts.breakdown_bars(df, "p95", f"P95 by {label.lower()}", "ms"), key=f"lat_{dim}")

st.subheader("Failed requests")
st.write(f"Latency of failed requests, kept apart from the percentiles above: "
         f"P50 {panels.fmt_ms(w.failed_p50)}, P95 {panels.fmt_ms(w.failed_p95)}, "
         f"P99 {panels.fmt_ms(w.failed_p99)} over {w.errors:,} failures.")
