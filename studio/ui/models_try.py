"""Models page, "Try it" tab: pick any callable model and send it one request.

Each model type has its own panel (:mod:`studio.ui.models_try_panels`). Chat and
completion answers are drawn as the model writes them (:func:`stream_request`). Every
answer shows latency and tokens, the raw request and response JSON, and the
same call as a ``studio model execute`` command.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import streamlit as st

from studio.models import registry
from studio.models.zoo import ZooEntry
from studio.ui.common import show_error, studio_session
from studio.ui.models_zoo import load_zoo

__all__ = ["cli_command", "render_try", "run_request", "show_exchange", "stream_request"]

MODEL = "models_try_model"
DEFAULT_MODEL = "builtin/smollm2-135m-instruct"


def cli_command(model: str, request: dict[str, Any]) -> str:
    """The shell commands that send ``request`` to ``model`` from the command line."""
    body = json.dumps(request, indent=2, ensure_ascii=False)
    return (
        f"cat > request.json <<'JSON'\n{body}\nJSON\n"
        f"studio model execute {shlex.quote(model)} request.json"
    )


def run_request(model: str, payload: dict[str, Any], slot: str) -> dict[str, Any] | None:
    """Execute ``payload`` on ``model``; keep request, response and latency in ``slot``."""
    started = time.perf_counter()
    try:
        with st.spinner(f"Calling {model}…"), studio_session() as session:
            response = registry.execute(session=session, ref=model, payload=payload, source="ui")
    except Exception as exc:
        show_error(exc)
        return None
    result = {
        "model": model,
        "request": payload,
        "response": response.model_dump(mode="json"),
        "latency_ms": (time.perf_counter() - started) * 1000,
    }
    st.session_state[slot] = result
    return result


def stream_request(model: str, payload: dict[str, Any], slot: str) -> dict[str, Any] | None:
    """:func:`run_request` for chat and completion models, drawing the answer as it is
    written (where the caller is, e.g. in an assistant chat message)."""
    stream = registry.ModelStream(ref=model, payload=payload, source="ui")
    try:
        st.write_stream(stream.texts(), cursor="▌")
    except Exception as exc:
        show_error(exc)
        return None
    if stream.response is None:  # the stream ended before the model was called
        return None
    result = {
        "model": model,
        "request": payload,
        "response": stream.response.model_dump(mode="json"),
        "latency_ms": stream.latency_ms or 0.0,
    }
    st.session_state[slot] = result
    return result


def _tokens(response: dict[str, Any]) -> str:
    if response.get("tokens_used") is not None:
        return f"{response['tokens_used']} tokens"
    prompt, out = response.get("prompt_tokens"), response.get("response_tokens")
    if prompt is None and out is None:
        return "not reported"
    return f"{prompt or 0} in · {out or 0} out"


def show_exchange(result: dict[str, Any]) -> None:
    """Latency, tokens, raw JSON both ways, and the call as a CLI command."""
    latency, tokens = st.columns(2)
    latency.metric("Latency", f"{result['latency_ms']:.0f} ms")
    tokens.metric("Tokens", _tokens(result["response"]))
    with st.expander("Request JSON"):
        st.json(result["request"])
    with st.expander("Response JSON"):
        st.json(result["response"], expanded=2)
    with st.expander("Copy as CLI command"):
        st.caption("Runs the same request from a terminal (the copy button is at the top right).")
        st.code(cli_command(result["model"], result["request"]), language="bash")


def _label(entry: ZooEntry) -> str:
    return f"{entry.name}  ·  {entry.model_type}"


def render_try() -> None:
    from studio.ui import models_try_panels as panels

    entries, _problems = load_zoo()
    callable_ = {e.name: e for e in entries if e.status == "READY"}
    if not callable_:
        st.info("No model is ready to call. Create one in the Custom models tab.")
        return
    names = list(callable_)
    if st.session_state.get(MODEL) not in callable_:
        st.session_state[MODEL] = DEFAULT_MODEL if DEFAULT_MODEL in callable_ else names[0]
    name = st.selectbox(
        "Model", names, key=MODEL, format_func=lambda n: _label(callable_[n]), width=600
    )
    entry = callable_[name]
    facts = [entry.model_type, f"provider {entry.provider}"]
    if entry.context_window:
        facts.append(f"context window {entry.context_window} tokens")
    facts.append("runs offline on this machine" if entry.offline else "calls a remote server")
    st.caption(" · ".join(facts) + (f". {entry.description}" if entry.description else ""))
    panel = {
        "CHAT_COMPLETION": panels.chat_panel,
        "COMPLETION": panels.completion_panel,
        "EMBEDDING": panels.embedding_panel,
        "RERANKING": panels.reranking_panel,
        "AGENT": panels.agent_panel,
    }.get(entry.model_type)
    if panel is None:
        st.warning(f"The studio has no try-it panel for {entry.model_type} models.")
        return
    panel(entry)
