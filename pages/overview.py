"""Overview: is the model fast and up? KPIs for the window against the previous one."""

import streamlit as st

from monitoring.metrics.status import kpi_status
from ui import data, panels, sidebar

st.title("Overview")
view = sidebar.require("timestamp")
missing = frozenset(c for c in ("latency_ms", "status") if view.ws.source.missing(c))
for c in sorted(missing):
    st.info(view.ws.source.missing(c))
s = data.window(view, with_previous=True)
w, p = s.window, s.previous
st.caption(f"{w.start:%Y-%m-%d %H:%M} → {w.end:%Y-%m-%d %H:%M} UTC, compared with the "
           f"{(w.end - w.start).total_seconds() / 3600:.0f} hours before · percentiles: {w.method}")

slo = view.ws.config.slo
for st_ in kpi_status(w, slo, s.buckets, missing):
    if st_.level == "grey" and ({"latency": "latency_ms", "errors": "status"}[st_.area] in missing):
        continue            # the note above says which column is missing
    {"red": st.error, "amber": st.warning, "green": st.success, "grey": st.info}[st_.level](st_.sentence)

b = s.sparkline()   # at most 48 points a card: coarser buckets than the sidebar's when needed
c = st.columns(3)
c[0].metric("Requests", f"{w.requests:,}", panels.delta_count(w.requests, p.requests if p else None),
            chart_data=b["requests"].to_list(), border=True)
c[1].metric("Throughput", f"{w.requests_per_minute:,.1f} /min",
            panels.delta_num(w.requests_per_minute, p.requests_per_minute if p else None, "/min"),
            chart_data=b["rpm"].to_list(), border=True)
if "status" not in missing:      # a card of dashes for a column the logs do not have says nothing
    c[2].metric("Error rate", panels.fmt_pct(w.error_rate),
                panels.delta_pct_points(w.error_rate, p.error_rate if p else None), delta_color="inverse",
                chart_data=b["error_rate"].fill_null(0).to_list(), border=True,
                help=f"Failed / all requests. SLO: at most {slo.error_rate:.0%}.")
if "latency_ms" not in missing:
    c = st.columns(3)
    for col, (name, cur, prev, series) in zip(c, [
            ("P50 latency", w.p50, p.p50 if p else None, "p50"),
            ("P95 latency", w.p95, p.p95 if p else None, "p95"),
            ("P99 latency", w.p99, p.p99 if p else None, "p99")], strict=True):
        col.metric(name, panels.fmt_ms(cur), panels.delta_ms(cur, prev), delta_color="inverse",
                   chart_data=b[series].fill_null(0).to_list(), border=True,
                   help=f"Successful requests only. P95 SLO: {slo.p95_latency_ms:,.0f} ms.")
    st.caption(f"Failed requests' latency: P50 {panels.fmt_ms(w.failed_p50)}, P95 {panels.fmt_ms(w.failed_p95)}, "
               f"P99 {panels.fmt_ms(w.failed_p99)} (kept apart from the percentiles above).")

frame, spikes, gaps = data.traffic_anomalies(view.ws, view.fingerprint, view.filters, view.bucket)
st.subheader("Incidents in this window")
panels.incident_list(view, s, gaps, spikes)
