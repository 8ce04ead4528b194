"""Alerts: when each rule fired and resolved over the whole history, with acknowledgements."""

import polars as pl
import streamlit as st

from monitoring.alerts import RULES
from monitoring.alerts.store import acknowledge
from monitoring.charts import alert_timeline
from monitoring.database import FAILURES, describe
from monitoring.fmt import md
from ui import auth, data, flash, sidebar

PAGES = {"Latency": "pages/latency.py", "Errors": "pages/errors.py", "Throughput": "pages/throughput.py",
         "Drift": "pages/drift.py", "Queues": "pages/queues.py"}

st.title("Alerts")
flash.show()          # "Acknowledged ...", after the rerun that shows it
view = sidebar.require("timestamp")
ws = view.ws
h, db_problem = data.alert_history(ws, view.fingerprint)   # evaluated and stored once per set of logs
st.caption(f"{len(RULES)} rules evaluated every 5 minutes over the whole log history "
           f"({view.extent.first:%Y-%m-%d} → {view.extent.last:%Y-%m-%d} UTC); rules and thresholds "
           "are set in monitoring.toml [alerts]. The sidebar's time range does not apply here.")

if db_problem:
    st.warning(f"The alert history cannot be stored or read, so acknowledgements are unavailable: "
               f"{md(db_problem)}. The alerts below are evaluated from the logs.")
firing = h.filter(pl.col("resolved_at").is_null())
if firing.height:
    st.error(f"{firing.height} alert(s) firing at the end of the logs.")
    for r in firing.iter_rows(named=True):
        st.markdown(f"**{md(r['title'])}** ({md(r['subject'])}) since {r['started_at']:%Y-%m-%d %H:%M} UTC: "
                    f"{md(r['message'], limit=1000)}.")
elif h.height:
    st.success("Nothing firing at the end of the logs.")
else:
    st.success("No alert fired over the whole history.")
    st.stop()

st.plotly_chart(alert_timeline(h, view.extent.first, view.extent.last), key="alert_timeline")

st.subheader("History")
st.dataframe(
    h.select("id", "title", "subject", "started_at", "resolved_at", "message", "ack_by", "page"),
    hide_index=True,
    column_config={"started_at": st.column_config.DatetimeColumn("fired (UTC)", format="YYYY-MM-DD HH:mm"),
                   "resolved_at": st.column_config.DatetimeColumn("resolved (UTC)", format="YYYY-MM-DD HH:mm"),
                   "ack_by": "acknowledged by", "page": "explained on"})
cols = st.columns(len(PAGES))
for col, (name, path) in zip(cols, PAGES.items(), strict=True):
    if path in {"pages/drift.py", "pages/queues.py"} and name not in set(h["page"].to_list()):
        continue
    col.page_link(path, label=f"Open {name}", icon=":material/arrow_forward:")

if db_problem:
    st.stop()
if not auth.can("alert.acknowledge"):
    st.caption(auth.denied("alert.acknowledge") + " (acknowledging an alert)")
    st.stop()
with st.form("ack"):
    st.markdown("**Acknowledge an alert**")
    labels = {r["id"]: f"#{r['id']} {r['title']} ({r['started_at']:%Y-%m-%d %H:%M})" for r in h.iter_rows(named=True)}
    episode = st.selectbox("Alert", list(labels), format_func=labels.get)
    me = auth.actor()
    who = "" if me and me.authenticated else st.text_input("Your name", value=st.session_state.get("reviewer_name", ""))
    note = st.text_input("Note (optional)")
    if st.form_submit_button("Acknowledge"):
        try:
            acknowledge(data.alerts_db(ws.config.database_url), int(episode), who, note, actor=auth.acting())
            flash.say("success", f"Acknowledged {md(labels[episode])}.")
            st.rerun()
        except FAILURES as exc:
            st.error(f"Not acknowledged: {md(describe(exc))}.")
        except ValueError as exc:
            st.error(md(str(exc)))
