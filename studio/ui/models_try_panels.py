"""The try-it panels, one per model type: widgets → one request → a readable answer."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from studio.core.errors import FieldProblem, RequestValidationError
from studio.models.zoo import ZooEntry
from studio.ui.common import show_error
from studio.ui.models_try import run_request, show_exchange, stream_request

__all__ = [
    "agent_panel",
    "chat_panel",
    "completion_panel",
    "cosine_matrix",
    "embedding_panel",
    "reranking_panel",
]

CHATS = "models_chat_histories"  # model name → list of {"role", "content"}
EXAMPLE_TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "arguments": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    }
]


def _init(key: str, value: Any) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _sampling(prefix: str) -> dict[str, Any]:
    _init(f"{prefix}_temperature", 0.0)
    _init(f"{prefix}_max_tokens", 64)
    left, right = st.columns(2)
    temperature = left.slider(
        "Temperature",
        0.0,
        1.0,
        step=0.05,
        key=f"{prefix}_temperature",
        help="0 gives the same answer every time; higher values vary more",
    )
    max_tokens = right.number_input(
        "Max tokens", min_value=1, max_value=8192, step=16, key=f"{prefix}_max_tokens"
    )
    return {"temperature": float(temperature), "max_tokens": int(max_tokens)}


def _result(slot: str, model: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = st.session_state.get(slot)
    return result if result and result["model"] == model else None


# -- chat -------------------------------------------------------------------------------


def chat_panel(entry: ZooEntry) -> None:
    _init(CHATS, {})
    _init("models_chat_system", "")
    history: list[dict[str, str]] = st.session_state[CHATS].setdefault(entry.name, [])
    st.text_input(
        "System prompt (optional)", key="models_chat_system", placeholder="You are a helpful…"
    )
    sampling = _sampling("models_chat")
    for message in history:
        with st.chat_message(message["role"]):
            st.markdown(message["content"] or "_(no text)_")
    prompt = st.chat_input(f"Message {entry.name}", key="models_chat_input")
    if prompt:
        system = st.session_state.models_chat_system.strip()
        messages = ([{"role": "system", "content": system}] if system else []) + [
            *history,
            {"role": "user", "content": prompt},
        ]
        with st.chat_message("user"):
            st.markdown(prompt)
        with st.chat_message("assistant"):
            result = stream_request(
                entry.name, {"messages": messages, **sampling}, "models_chat_result"
            )
        if result is not None:
            reply = result["response"]["message"]
            history.append({"role": "user", "content": prompt})
            history.append({"role": "assistant", "content": reply.get("content") or ""})
            st.rerun()
    result = _result("models_chat_result", entry.name)
    if result and history:
        dropped = int(result["response"].get("trimmed_messages") or 0)
        if dropped:
            window = f" of {entry.context_window} tokens" if entry.context_window else ""
            st.info(
                f"The conversation passed 80% of the model's context window{window}, so the "
                f"oldest {dropped} message{'s were' if dropped != 1 else ' was'} left out of the "
                "last request. The model did not see them."
            )
        show_exchange(result)
    if history and st.button("Clear the conversation", key="models_chat_clear"):
        st.session_state[CHATS][entry.name] = []
        st.session_state.pop("models_chat_result", None)
        st.rerun()
    if not history:
        st.caption("Type a message below to start a conversation. The history is kept here.")


# -- completion -----------------------------------------------------------------------------


def completion_panel(entry: ZooEntry) -> None:
    _init("models_completion_prompts", "The capital of France is")
    _init("models_completion_stops", "")
    st.text_area("Prompts (one per line)", key="models_completion_prompts", height=100)
    sampling = _sampling("models_completion")
    st.text_input(
        "Stop sequences (optional, up to 4, separated by commas)", key="models_completion_stops"
    )
    if st.button("Complete", type="primary", key="models_completion_run"):
        prompts = _lines(st.session_state.models_completion_prompts)
        stops = [s for s in st.session_state.models_completion_stops.split(",") if s.strip()]
        if not prompts:
            st.warning("Type at least one prompt.")
        else:
            payload: dict[str, Any] = {"prompts": prompts, **sampling}
            if stops:
                payload["stop_sequences"] = stops
            if len(prompts) == 1:  # one answer: drawn as it is written
                live = st.empty()
                with live.container():
                    st.markdown(f"**{prompts[0]}**")
                    stream_request(entry.name, payload, "models_completion_result")
                live.empty()
            else:
                run_request(entry.name, payload, "models_completion_result")
    result = _result("models_completion_result", entry.name)
    if result:
        for prompt, outputs in result["response"]["completions"]:
            st.markdown(f"**{prompt}**")
            for text in outputs:
                st.info(text or "(the model returned no text)")
        st.caption(f"Finish reason: {result['response'].get('finish_reason') or 'not reported'}")
        show_exchange(result)


# -- embedding ----------------------------------------------------------------------------------


def cosine_matrix(vectors: list[list[float]]) -> list[list[float]]:
    """Cosine similarity of every pair of vectors (0 for a zero vector)."""
    norms = [math.sqrt(sum(x * x for x in v)) for v in vectors]
    return [
        [
            sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb) if na and nb else 0.0
            for b, nb in zip(vectors, norms, strict=True)
        ]
        for a, na in zip(vectors, norms, strict=True)
    ]


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def embedding_panel(entry: ZooEntry) -> None:
    _init(
        "models_embedding_texts",
        "The cat sat on the mat.\nA kitten is resting on a rug.\nStock markets fell today.",
    )
    st.text_area("Texts (one per line)", key="models_embedding_texts", height=110)
    if st.button("Embed", type="primary", key="models_embedding_run"):
        texts = _lines(st.session_state.models_embedding_texts)
        if not texts:
            st.warning("Type at least one text.")
        else:
            run_request(entry.name, {"texts": texts}, "models_embedding_result")
    result = _result("models_embedding_result", entry.name)
    if not result:
        return
    pairs = result["response"]["embeddings"]
    texts = [t for t, _ in pairs]
    vectors = [v for _, v in pairs]
    a, b = st.columns(2)
    a.metric("Vector length", len(vectors[0]) if vectors else 0)
    b.metric("Texts", len(texts))
    if len(vectors) > 1:
        labels = [f"{i + 1}. {_short(t)}" for i, t in enumerate(texts)]
        fig = px.imshow(
            cosine_matrix(vectors),
            x=labels,
            y=labels,
            text_auto=".2f",
            zmin=-1,
            zmax=1,
            color_continuous_scale="RdBu",
            labels={"color": "cosine similarity"},
            height=120 + 60 * len(labels),
        )
        st.plotly_chart(fig, key="models_embedding_heatmap")
        st.caption("Cosine similarity of every pair of texts: 1 means the same meaning.")
    else:
        st.caption("Add a second line to see how similar the texts are.")
    show_exchange(result)


# -- reranking --------------------------------------------------------------------------------


def reranking_panel(entry: ZooEntry) -> None:
    _init("models_rerank_query", "Which is the largest continent?")
    _init(
        "models_rerank_chunks",
        "Milk goes well with cereals.\nAsia is the largest continent on Earth.\n"
        "Africa is the second-largest continent.",
    )
    st.text_input("Query", key="models_rerank_query")
    st.text_area("Chunks (one per line)", key="models_rerank_chunks", height=110)
    if st.button("Rerank", type="primary", key="models_rerank_run"):
        chunks = _lines(st.session_state.models_rerank_chunks)
        query = st.session_state.models_rerank_query.strip()
        if not chunks or not query:
            st.warning("Type a query and at least one chunk.")
        else:
            run_request(entry.name, {"query": query, "chunks": chunks}, "models_rerank_result")
    result = _result("models_rerank_result", entry.name)
    if not result:
        return
    chunks = result["request"]["chunks"]
    scores = result["response"]["chunk_scores"]
    frame = pd.DataFrame({"Chunk": chunks, "Score": scores})
    frame = frame.sort_values("Score", ascending=False).reset_index(drop=True)
    frame.insert(0, "Rank", range(1, len(frame) + 1))
    fig = px.bar(
        frame.assign(
            Label=[f"{r}. {_short(c, 60)}" for r, c in zip(frame.Rank, frame.Chunk, strict=True)]
        ),
        x="Score",
        y="Label",
        orientation="h",
        text_auto=".3f",
        height=100 + 45 * len(frame),
    )
    fig.update_layout(yaxis={"autorange": "reversed", "title": None})
    st.plotly_chart(fig, key="models_rerank_chart")
    st.dataframe(frame, hide_index=True, width="stretch")
    show_exchange(result)


# -- agent ------------------------------------------------------------------------------------


def _tools(text: str) -> list[Any]:
    try:
        tools = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [FieldProblem(f"line {exc.lineno} column {exc.colno}", exc.msg)], what="tools JSON"
        ) from exc
    if not isinstance(tools, list):
        raise RequestValidationError(
            [FieldProblem("tools", "must be a JSON list of tools")], what="tools JSON"
        )
    return tools


def agent_panel(entry: ZooEntry) -> None:
    _init("models_agent_message", "What is the weather in Paris?")
    _init("models_agent_instructions", "Use a tool when one fits the question.")
    _init("models_agent_tools", json.dumps(EXAMPLE_TOOLS, indent=2))
    st.text_area("User message", key="models_agent_message", height=80)
    st.text_input("Instructions (optional)", key="models_agent_instructions")
    st.text_area(
        "Tools (a JSON list; each tool has a name, a description and JSON-Schema arguments)",
        key="models_agent_tools",
        height=220,
    )
    sampling = _sampling("models_agent")
    if st.button("Run the agent", type="primary", key="models_agent_run"):
        try:
            tools = _tools(st.session_state.models_agent_tools)
        except RequestValidationError as exc:
            show_error(exc)
        else:
            payload: dict[str, Any] = {
                "messages": [{"role": "user", "content": st.session_state.models_agent_message}],
                "tools": tools,
                **sampling,
            }
            instructions = st.session_state.models_agent_instructions.strip()
            if instructions:
                payload["instructions"] = instructions
            run_request(entry.name, payload, "models_agent_result")
    result = _result("models_agent_result", entry.name)
    if not result:
        return
    response = result["response"]
    context = response.get("context") or {}
    if response.get("action") == "tool_request" and context.get("tool_request"):
        call = context["tool_request"]
        st.success(f"The agent asks to call the tool **{call['name']}** with these arguments:")
        st.json(call.get("arguments") or {})
    else:
        st.success("The agent answered directly:")
        st.info(context.get("content") or "(no text)")
    show_exchange(result)
