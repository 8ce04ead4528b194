"""Weekly health: one screen a manager reads in five minutes, exportable."""

import streamlit as st

from monitoring.cli.options import dump_json
from monitoring.fmt import md
from monitoring.reports.export import AREA_TITLES, charts, events, figures, to_html, to_markdown
from monitoring.reports.summary import default_week, weeks_with_data
from ui import data, sidebar
from ui.prefetch import shown_week

st.title("Weekly health")
view = sidebar.require("timestamp")

weeks = weeks_with_data(view.ws)
newest_first = list(reversed(weeks))
week = st.selectbox("ISO week (Monday to Sunday, UTC)", newest_first, key="summary_week",
                    index=newest_first.index(shown_week(weeks, default_week(view.ws))) if weeks else 0)
s = data.weekly(view.ws, view.fingerprint, week)
st.caption(f"{s['start']:%a %d %b %Y} → {s['end']:%a %d %b %Y} UTC · the sidebar's time range does not apply here")

box = {"red": st.error, "amber": st.warning, "green": st.success, "grey": st.info}[s["status"]]
box(md(s["headline"], limit=None))

cols = st.columns(3)
for i, (name, area) in enumerate(s["areas"].items()):
    with cols[i % 3].container(border=True):
        color = {"red": "red", "amber": "orange", "green": "green", "grey": "gray"}[area["status"]]
        st.markdown(f"**{AREA_TITLES[name]}** · :{color}[{area['status']}]")
        st.markdown(md(area["reason"], limit=None))

st.subheader("What happened")
pending = s["alerts_pending"]
for line in events(s, md) or [f"- Nothing: no deployments, no retirements{'' if pending else ', no alerts'}."]:
    st.markdown(line)
if pending:
    # Polls every 2 s while the background evaluation runs; one app rerun then adds its alerts.
    @st.fragment(run_every=2)
    def alerts_part() -> None:
        try:
            done = data.alert_episodes_done(view.ws, view.fingerprint, data.labels_mark(view.ws)) is not None
        except Exception:   # failed: the rerun's summary says why
            done = True
        if done:
            st.rerun()
        st.caption("Alert rules are still being evaluated over the history: this week's alerts are added "
                   "here when done, and the downloads then include them. The rest of this page is complete.")
    alerts_part()

with st.expander("Charts and all figures"):
    for i, fig in enumerate(charts(s)):
        st.plotly_chart(fig, key=f"summary_chart_{i}")
    st.dataframe([{"area": AREA_TITLES[a], "figure": f, "value": v} for a, f, v in figures(s)], hide_index=True)

c = st.columns(3)
c[0].download_button("Download HTML (offline)", lambda: to_html(s), file_name=f"model-health-{week}.html",
                     mime="text/html", icon=":material/download:", disabled=pending)
c[1].download_button("Download Markdown", lambda: to_markdown(s), file_name=f"model-health-{week}.md",
                     mime="text/markdown", icon=":material/download:", disabled=pending)
c[2].download_button("Download JSON", lambda: dump_json(s), file_name=f"model-health-{week}.json",
                     mime="application/json", icon=":material/download:", disabled=pending)
