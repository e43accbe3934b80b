"""Home: what the studio is, a first-run guide, and a built-in model to try at once."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from studio.models import registry
from studio.services.apps import list_apps
from studio.services.samples import EXAMPLES, create_example
from studio.services.variants import list_variants
from studio.ui import db_ready, page_header, show_error, studio_session

page_header(
    "Prompt Studio",
    "Build LLM apps over your own data: write prompts, run them on every row of a CSV, "
    "compare models, deploy the winner.",
)
db_ready()

with studio_session() as session:
    models = registry.list_models(session=session)
    recent = sorted(list_apps(session=session), key=lambda a: a.last_activity, reverse=True)[:5]
    chat_models = [m.name for m in models if m.model_type == "CHAT_COMPLETION"]
    custom = [m for m in models if not m.is_builtin]


def _open_app(app_id: int) -> None:
    st.session_state.current_app_id = app_id
    st.session_state.pg_app = app_id
    st.session_state.home_goto = True


def _open_example(key: str) -> None:
    try:
        with studio_session() as session:
            app_id = create_example(session=session, key=key)
            variant = list_variants(session=session, app_id=app_id)[0]
    except Exception as exc:
        st.session_state.home_example_error = exc
        return
    st.session_state.pg_open_variant = variant.id
    _open_app(app_id)


left, right = st.columns([3, 2], gap="large")

with left:
    st.subheader("Try a model now")
    st.write(
        "The built-in models run on this machine, offline, with no API key. "
        "Type a message and press **Generate**."
    )
    if "home_model" not in st.session_state:
        st.session_state.home_model = chat_models[0] if chat_models else None
    model = st.selectbox("Model", chat_models, key="home_model")
    prompt = st.text_area(
        "Message",
        value="Write a one-sentence welcome for a cooking class.",
        key="home_prompt",
        height=100,
    )
    max_tokens = st.slider("Max tokens", 8, 512, 96, step=8, key="home_max_tokens")
    if st.button("Generate", type="primary", key="home_generate", disabled=not model):
        if not prompt.strip():
            st.warning("Type a message first.")
        else:
            with st.spinner("The model is writing…"), studio_session() as session:
                try:
                    response = registry.execute(
                        session=session,
                        ref=str(model),
                        payload={"prompt": prompt, "chat_history": [], "max_tokens": max_tokens},
                        source="ui",
                    )
                    data = response.model_dump()
                    st.session_state.home_answer = data
                except Exception as exc:
                    st.session_state.home_answer = None
                    show_error(exc)
    answer = st.session_state.get("home_answer")
    if answer:
        st.markdown("**Answer**")
        st.info(answer["message"]["content"] or "(the model returned no text)")
        st.caption(
            f"{answer.get('prompt_tokens') or 0} prompt tokens · "
            f"{answer.get('response_tokens') or 0} response tokens"
        )

with right:
    st.subheader("Get started")
    st.markdown(
        "Open an example app: it comes with a sample dataset and a prompt on a built-in "
        "model, so **Generate** works at once, offline."
    )
    for example in EXAMPLES.values():
        st.button(
            f"{example.app_name}: {example.description}",
            key=f"home_example_{example.key}",
            on_click=_open_example,
            args=(example.key,),
            icon=":material/rocket_launch:",
            width="stretch",
        )
    st.markdown(
        """
**Your own data in four steps**
1. **Apps**: create an app for your use case.
2. **Datasets**: upload a CSV; its columns become prompt variables.
3. **Playground**: write a prompt like `Write an email about {{event}}`, try one row,
   then generate every row and download the results.
4. **Variants**: keep the prompts that work, with every version and a diff.

Connect OpenAI, Anthropic or your own OpenAI-compatible server on the **Models** page.
"""
    )
    if st.session_state.get("home_example_error") is not None:
        show_error(st.session_state.home_example_error)
        st.session_state.home_example_error = None

    st.subheader("Recent apps")
    if not recent:
        st.caption("No apps yet: open an example above, or create one on the Apps page.")
    for summary in recent:
        with st.container(border=True):
            st.markdown(f"**{summary.name}**")
            st.caption(
                f"{summary.datasets} dataset(s) · {summary.variants} variant(s) · "
                f"{summary.runs} run(s) · last activity "
                f"{summary.last_activity.strftime('%Y-%m-%d %H:%M')} UTC"
            )
            st.button(
                "Open in Playground",
                key=f"home_open_{summary.id}",
                on_click=_open_app,
                args=(summary.id,),
            )
    st.metric("Models available", len(models), help="Built-in plus custom models")
    if not custom:
        st.caption("No custom models yet: add them on the Models page.")

if st.session_state.get("home_goto"):
    st.session_state.home_goto = False
    try:
        st.switch_page("pages/playground.py")
    except StreamlitPageNotFoundError:  # the page runs on its own, outside app.py
        st.info("Open the **Playground** in the sidebar.")
