"""Home: what the studio is, a first-run guide, and a built-in model to try at once."""

from __future__ import annotations

import streamlit as st

from studio import registry
from studio.ui import db_ready, page_header, show_error, studio_session

page_header(
    "Prompt Studio",
    "Build LLM apps over your own data: write prompts, run them on every row of a CSV, "
    "compare models, deploy the winner.",
)
db_ready()

with studio_session() as session:
    models = registry.list_models(session=session)
    chat_models = [m.name for m in models if m.model_type == "CHAT_COMPLETION"]
    custom = [m for m in models if not m.is_builtin]

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
        """
1. **Try a built-in model** on the left: small, offline, free.
2. **See every model** on the **Models** page: chat, completion, embedding,
   reranking and agent models, their status and usage.
3. **Connect your own provider** from a terminal, for example an
   OpenAI-compatible server:
   `studio provider add myserver --kind openai --base-url http://localhost:8000/v1`
   then call its models as `myserver/MODEL`.
4. **Create custom models** from templates, for example a GGUF file on disk:
   `studio model-template list`, then `studio model create model.json`.
"""
    )
    st.metric("Models available", len(models), help="Built-in plus custom models")
    if not custom:
        st.caption("No custom models yet: step 4 shows how to add one.")
