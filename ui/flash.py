"""Confirmations that survive the rerun an action causes: a callback (or a handler just before
`st.rerun()`) calls `say(...)`; the next run of the page shows it at the top, outside any
expander or tab, once, and as a toast.

    flash.say("success", "Queue #3 created.")      # in the action's callback
    flash.show()                                    # right under the page title
"""

from __future__ import annotations

import streamlit as st

_KEY = "_flash"
_SHOW = {"success": st.success, "error": st.error, "warning": st.warning, "info": st.info}


def say(kind: str, text: str) -> None:
    """Queue a message (Markdown-safe text: pass log text through monitoring.fmt.md)."""
    st.session_state.setdefault(_KEY, []).append((kind, text))


def show() -> None:
    """Draw the queued messages, then forget them."""
    for kind, text in st.session_state.pop(_KEY, []):
        _SHOW.get(kind, st.info)(text)
        if kind == "success":
            st.toast(text, icon=":material/check_circle:")
