"""The Playground's parameter widgets keep the editor's defaults even when their presets are lost.

A browser journey saw "Max tokens" drawn at 1 (its minimum) after Streamlit dropped the
session-state preset between two quick reruns; a run started then would have asked the model
for one token. The widgets carry their defaults as ``value=``, so a lost preset falls back to
the editor's defaults, not to each widget's minimum.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _editor_without_presets() -> None:
    from studio.ui.playground_editor import parameters_editor

    parameters_editor()  # no init_editor(): the presets are gone, as after Streamlit drops them


def _editor_with_presets() -> None:
    import streamlit as st

    from studio.ui.playground_editor import init_editor, parameters_editor

    init_editor()
    if "loaded" not in st.session_state:  # a saved variant loaded into the editor
        st.session_state.loaded = True
        st.session_state.pg_max_tokens = 40
        st.session_state.pg_temperature = 0.7
    parameters_editor()


def test_lost_presets_fall_back_to_the_editor_defaults_not_the_minimum() -> None:
    at = AppTest.from_function(_editor_without_presets).run()
    assert not at.exception
    assert at.number_input(key="pg_max_tokens").value == 128
    assert at.slider(key="pg_temperature").value == 0.2
    assert at.slider(key="pg_top_p").value == 1.0


def test_values_loaded_into_session_state_still_win() -> None:
    at = AppTest.from_function(_editor_with_presets).run()
    assert not at.exception
    assert at.number_input(key="pg_max_tokens").value == 40
    assert at.slider(key="pg_temperature").value == 0.7
    at.number_input(key="pg_max_tokens").set_value(24).run()
    assert at.number_input(key="pg_max_tokens").value == 24
    assert at.slider(key="pg_temperature").value == 0.7
