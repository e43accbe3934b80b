"""The Models page: zoo, try-it panels, connections, custom models, templates, usage.

Interaction tests drive pages/models.py with AppTest. Tabs are lazy (only the
open tab runs), so a test opens a tab by setting ``models_tab`` in session state,
as a click on the tab would. External servers are a real loopback HTTP server
(:class:`OpenAIStyleServer`) or the ``mock`` provider.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from studio.core.schemas import ActionContext, AgentAction, AgentResponse, ToolRequest
from studio.models import registry
from studio.models.specs import ModelCreate
from studio.models.usage import usage_statistics
from studio.providers.builtin import smollm2_gguf
from studio.store import session_scope
from studio.store.tables import ProviderConnection
from tests.providers.fakes import FakeServer, Step, chat_body

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "models.py")
SECRET = "sk-test-Sup3rSecretValue-0123456789"


class OpenAIStyleServer(FakeServer):
    """A loopback OpenAI-compatible server: scripted steps first, then sensible defaults."""

    def __init__(self, models: tuple[str, ...] = ("tiny-chat", "tiny-embed")) -> None:
        super().__init__()
        self.models = models
        self.auth: list[str | None] = []

    def _next(self, path: str, body: Any) -> Step:
        with self._lock:
            self.received.append((path, body))
            if self.steps:
                return self.steps.popleft()
        if path.endswith("/models"):
            return Step(body={"object": "list", "data": [{"id": m} for m in self.models]})
        if path.endswith("/chat/completions"):
            last = body["messages"][-1]["content"] if body else ""
            return Step(body=chat_body(f"Hello from the fake server; you said: {last}"))
        return Step(status=404, body={"error": {"message": f"no route {path}"}})


@pytest.fixture
def server() -> Iterator[OpenAIStyleServer]:
    srv = OpenAIStyleServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120)


def _open(at: AppTest, tab: str) -> AppTest:
    at.session_state["models_tab"] = tab
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _rendered(at: AppTest) -> str:
    """Everything the page sent to the browser, as text (every element's protobuf)."""
    return "\n".join(str(getattr(n, "proto", "")) for n in _walk(at._tree))


def _password(at: AppTest, base: str) -> Any:
    """The password box whose key starts with ``base`` (its key changes after each save)."""
    boxes = [t for t in at.text_input if t.key and t.key.rsplit("_", 1)[0] == base]
    assert len(boxes) == 1, [t.key for t in at.text_input]
    return boxes[0]


def _add_connection(at: AppTest, url: str, *, name: str = "local", key: str = "") -> AppTest:
    _open(at, "Connections")
    at.selectbox(key="models_conn_kind").set_value(
        "OpenAI-compatible server (vLLM, Ollama, LM Studio, llama.cpp)"
    ).run()
    at.text_input(key="models_conn_name").set_value(name)
    at.text_input(key="models_conn_url").set_value(url)
    _password(at, "models_conn_key").set_value(key)
    at.button(key="models_conn_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# -- zoo ------------------------------------------------------------------------------------


def test_zoo_lists_builtins_and_failed_deployments_and_filters(tmp_path: Path) -> None:
    with session_scope() as session:
        registry.create_model(
            session=session,
            data=ModelCreate(
                name="broken-llama",
                model_template_id="llama-cpp-chat",
                model_creation_parameters={"model_path": str(tmp_path / "missing.gguf")},
            ),
            local=True,  # the operator's own machine, as the CLI and the pages
        )
    at = _app().run()
    assert not at.exception
    table = at.dataframe[0].value
    names = list(table["Name"])
    assert "builtin/smollm2-135m-instruct" in names and "broken-llama" in names
    builtin = table[table["Name"] == "builtin/all-minilm-l6-v2"].iloc[0]
    assert (builtin["Built-in"], builtin["Offline"], builtin["Input $/1M tokens"]) == (
        "yes",
        "yes",
        "free",
    )
    assert builtin["Context window"] == "256 tokens"
    assert any("broken-llama failed to deploy" in w for w in _texts(at.warning))
    at.multiselect(key="models_type_filter").set_value(["EMBEDDING"]).run()
    assert list(at.dataframe[0].value["Type"]) == ["EMBEDDING"]
    at.multiselect(key="models_type_filter").set_value([]).run()
    at.multiselect(key="models_provider_filter").set_value(["llama-cpp"]).run()
    assert list(at.dataframe[0].value["Name"]) == ["broken-llama"]


def test_zoo_shows_connection_models_with_prices(mock_provider: Any) -> None:
    from studio.models.usage import set_price

    with session_scope() as session:
        set_price(session=session, model="echo", input_per_mtok=0.5, output_per_mtok=1.5)
    at = _app().run()
    table = at.dataframe[0].value
    row = table[table["Name"] == "mock/echo"].iloc[0]
    assert (row["Provider"], row["Type"], row["Offline"]) == ("mock", "CHAT_COMPLETION", "no")
    assert (row["Input $/1M tokens"], row["Output $/1M tokens"]) == ("$0.5", "$1.5")


# -- connections: add, test, chat, keys never shown ------------------------------------------


def test_add_connection_see_models_in_zoo_and_chat_key_never_shown(
    server: OpenAIStyleServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    at = _add_connection(_app(), f"{server.url}/v1", key=SECRET)
    assert any("Saved connection 'local'" in s for s in _texts(at.success))
    assert any("answered in" in s and "offers 2 models" in s for s in _texts(at.success))
    assert _password(at, "models_conn_key").value == ""
    assert not [k for k in at.session_state.to_dict() if k.startswith("models_conn_key_0")]
    conns = at.dataframe[0].value
    assert conns[conns["Name"] == "local"].iloc[0]["Key"].endswith("6789")

    _open(at, "Model zoo")
    assert {"local/tiny-chat", "local/tiny-embed"} <= set(at.dataframe[0].value["Name"])

    _open(at, "Try it")
    at.selectbox(key="models_try_model").set_value("local/tiny-chat").run()
    at.chat_input(key="models_chat_input").set_value("Hi there").run()
    assert not at.exception
    said = [m.markdown[0].value for m in at.chat_message if m.markdown]
    assert said[-2:] == ["Hi there", "Hello from the fake server; you said: Hi there"]
    assert any("studio model execute local/tiny-chat request.json" in c.value for c in at.code)
    assert server.received[-1][0] == "/v1/chat/completions"

    # The key went to the server, and nowhere else.
    rendered = _rendered(at)
    assert SECRET not in rendered and SECRET[-12:] not in rendered
    assert SECRET not in repr(at.session_state.to_dict())
    assert SECRET not in caplog.text
    with session_scope() as session:  # stored encrypted, on SQLite and PostgreSQL alike
        stored = " ".join(str(r.model_dump()) for r in session.exec(select(ProviderConnection)))
    assert "api_key_encrypted" in stored and SECRET not in stored
    database = Path.cwd() / "studio-home" / "studio.db"
    if database.exists():  # SQLite: not in the file's bytes either
        assert SECRET not in database.read_bytes().decode("latin-1")


def test_test_connection_reports_the_provider_error(server: OpenAIStyleServer) -> None:
    at = _add_connection(_app(), f"{server.url}/v1", key=SECRET)
    server.then(Step(status=401, body={"error": {"message": "Incorrect API key provided"}}))
    at.button(key="models_conn_test_local").click().run()
    errors = _texts(at.error)
    assert any("Incorrect API key provided" in e for e in errors), errors
    assert SECRET not in _rendered(at)


def test_unreachable_server_is_reported_as_a_sentence() -> None:
    at = _add_connection(_app(), "http://127.0.0.1:9/v1")
    warnings = _texts(at.warning)
    assert any("but the test call failed" in w and "could not reach" in w for w in warnings)
    assert not any("Traceback" in w for w in warnings)


def test_openai_connection_needs_a_key() -> None:
    at = _open(_app(), "Connections")
    at.selectbox(key="models_conn_kind").set_value("OpenAI").run()
    assert at.text_input(key="models_conn_name").value == "openai"
    at.button(key="models_conn_save").click().run()
    assert any("Paste the API key" in e for e in _texts(at.error))


def test_edit_key_and_url_then_remove_with_confirmation(server: OpenAIStyleServer) -> None:
    at = _add_connection(_app(), "http://127.0.0.1:9/v1", key=SECRET)
    new_key = "sk-new-key-abcdefghijkl-WXYZ"
    at.text_input(key="models_conn_edit_url_local").set_value(f"{server.url}/v1")
    _password(at, "models_conn_edit_key_local").set_value(new_key)
    at.button(key="models_conn_edit_save_local").click().run()
    assert any("Updated connection 'local'" in s for s in _texts(at.success))
    assert any("answered in" in s for s in _texts(at.success))
    assert _password(at, "models_conn_edit_key_local").value == ""
    assert new_key not in _rendered(at) and SECRET not in _rendered(at)
    conns = at.dataframe[0].value
    assert conns[conns["Name"] == "local"].iloc[0]["Key"].endswith("WXYZ")

    at.button(key="models_conn_remove_local").click().run()
    assert any("Remove connection 'local'" in w for w in _texts(at.warning))
    at.button(key="models_conn_remove_no_local").click().run()
    assert "local" in list(at.dataframe[0].value["Name"])
    at.button(key="models_conn_remove_local").click().run()
    at.button(key="models_conn_remove_yes_local").click().run()
    assert any("Removed connection 'local'" in s for s in _texts(at.success))
    assert "local" not in list(at.dataframe[0].value["Name"])


# -- try it: one panel per model type -------------------------------------------------------


def _external(name: str, model_type: str) -> None:
    with session_scope() as session:
        registry.create_model(
            session=session,
            data=ModelCreate(
                name=name, model_type=model_type, connection="mock", provider_model="echo"
            ),
        )


def _try(model: str) -> AppTest:
    at = _open(_app(), "Try it")
    at.selectbox(key="models_try_model").set_value(model).run()
    assert not at.exception
    return at


def test_chat_keeps_history_and_shows_trimming(mock_provider: Any) -> None:
    at = _try("mock/echo")
    at.chat_input(key="models_chat_input").set_value("first").run()
    at.chat_input(key="models_chat_input").set_value("second").run()
    request = mock_provider.calls[-1][2]
    assert [m.content for m in request.messages] == ["first", "echo: first", "second"]
    assert not any("left out" in i for i in _texts(at.info))

    mock_provider.window = 50  # the conversation now passes 80% of the window
    at.number_input(key="models_chat_max_tokens").set_value(4)
    at.chat_input(key="models_chat_input").set_value("third " * 10).run()
    infos = _texts(at.info)
    assert any("oldest" in i and "left out of the last request" in i for i in infos), infos
    at.button(key="models_chat_clear").click().run()
    assert not at.chat_message


def test_completion_panel(mock_provider: Any) -> None:
    _external("echo-complete", "COMPLETION")
    at = _try("echo-complete")
    at.text_area(key="models_completion_prompts").set_value("Once upon\nIn a galaxy")
    at.text_input(key="models_completion_stops").set_value("\\n, END")
    at.button(key="models_completion_run").click().run()
    assert _texts(at.info)[-2:] == ["echo: Once upon", "echo: In a galaxy"]
    assert mock_provider.calls[-1][2].stop_sequences == ["\\n", " END"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tokens"] == "5 in · 4 out"


def test_embedding_panel_shows_length_and_similarity_heatmap(mock_provider: Any) -> None:
    _external("echo-embed", "EMBEDDING")
    at = _try("echo-embed")
    at.text_area(key="models_embedding_texts").set_value("a\nbb\nccc")
    at.button(key="models_embedding_run").click().run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Vector length"] == "2" and metrics["Texts"] == "3"
    charts = at.get("plotly_chart")
    assert charts and '"type":"heatmap"' in charts[0].proto.spec.replace(" ", "")


def test_reranking_panel_sorts_chunks_by_score(mock_provider: Any) -> None:
    _external("echo-rerank", "RERANKING")
    at = _try("echo-rerank")
    at.text_input(key="models_rerank_query").set_value("largest continent")
    at.text_area(key="models_rerank_chunks").set_value(
        "milk and cereals\nthe largest continent\na continent"
    )
    at.button(key="models_rerank_run").click().run()
    table = at.dataframe[0].value
    assert list(table["Chunk"]) == ["the largest continent", "a continent", "milk and cereals"]
    assert list(table["Rank"]) == [1, 2, 3]
    assert at.get("plotly_chart")


def test_agent_panel_shows_the_tool_request(mock_provider: Any) -> None:
    _external("echo-agent", "AGENT")
    mock_provider.replies.append(
        AgentResponse(
            action=AgentAction.TOOL_REQUEST,
            context=ActionContext(
                tool_request=ToolRequest(name="get_weather", arguments={"city": "Paris"})
            ),
        )
    )
    at = _try("echo-agent")
    at.button(key="models_agent_run").click().run()
    assert any("get_weather" in s for s in _texts(at.success))
    assert mock_provider.calls[-1][2].tools[0].name == "get_weather"
    assert any('"city": "Paris"' in j.value.replace("'", '"') for j in at.json) or any(
        "Paris" in str(j.value) for j in at.json
    )


def test_agent_panel_refuses_broken_tools_json(mock_provider: Any) -> None:
    _external("echo-agent", "AGENT")
    at = _try("echo-agent")
    at.text_area(key="models_agent_tools").set_value('[{"name": "x",')
    at.button(key="models_agent_run").click().run()
    assert any("Invalid tools JSON" in e for e in _texts(at.error))
    assert not mock_provider.calls


def test_provider_error_is_a_sentence(mock_provider: Any) -> None:
    from studio.core.errors import ProviderRateLimitError

    mock_provider.replies.append(ProviderRateLimitError("slow down", provider="mock"))
    at = _try("mock/echo")
    at.chat_input(key="models_chat_input").set_value("hello").run()
    assert any("mock: slow down" in e for e in _texts(at.error))
    assert not at.exception


# -- custom models ----------------------------------------------------------------------------


def _custom(template: str) -> AppTest:
    at = _open(_app(), "Custom models")
    at.selectbox(key="models_custom_template").set_value(template).run()
    return at


def test_missing_required_parameter_is_refused_with_a_clear_message() -> None:
    at = _custom("llama-cpp-chat")
    at.text_input(key="models_custom_name").set_value("my-llama")
    at.button(key="models_custom_create").click().run()
    errors = _texts(at.error)
    assert any("'model_path' is required" in e and "GGUF" in e for e in errors), errors
    with session_scope() as session:
        assert "my-llama" not in [m.name for m in registry.list_models(session=session)]


def test_form_follows_the_parameter_types(admin: None) -> None:
    from studio.models.specs import TemplateCreate

    with session_scope() as session:
        registry.create_template(
            session=session,
            data=TemplateCreate.model_validate(
                {
                    "name": "typed",
                    "model_type": "EMBEDDING",
                    "runtime": "sentence-transformers",
                    "model_creation_parameters_schema": {
                        "parameters": [
                            {"name": "model_path", "type": "str", "required": True},
                            {"name": "batch", "type": "int"},
                            {"name": "scale", "type": "float"},
                            {"name": "normalize", "type": "bool"},
                        ]
                    },
                }
            ),
        )
    at = _custom("typed")
    assert at.text_input(key="models_custom_p_typed_model_path").label == "model_path *"
    assert at.number_input(key="models_custom_p_typed_batch").label == "batch"
    assert at.number_input(key="models_custom_p_typed_scale")
    assert at.checkbox(key="models_custom_p_typed_normalize").label == "normalize"


def test_failed_deployment_shows_the_reason_then_rename_group_delete(tmp_path: Path) -> None:
    at = _custom("llama-cpp-chat")
    at.text_input(key="models_custom_name").set_value("my-llama")
    at.text_input(key="models_custom_p_llama-cpp-chat_model_path").set_value(
        str(tmp_path / "nope.gguf")
    )
    at.button(key="models_custom_create").click().run()
    assert any("FAILED to deploy" in e and "does not exist" in e for e in _texts(at.error))

    at.text_input(key="models_custom_new_name").set_value("renamed-llama")
    at.button(key="models_custom_rename").click().run()
    assert any("Renamed my-llama to renamed-llama" in s for s in _texts(at.success))
    at.text_input(key="models_custom_set_group").set_value("team-a")
    at.button(key="models_custom_set_group_btn").click().run()
    mine = at.dataframe[0].value
    assert list(mine["Name"]) == ["renamed-llama"] and list(mine["Group"]) == ["team-a"]

    at.button(key="models_custom_delete").click().run()
    at.button(key="models_custom_delete_yes").click().run()
    assert any("Deleted renamed-llama" in s for s in _texts(at.success))
    assert any("No custom models yet" in i for i in _texts(at.info))


@pytest.mark.builtin_models
def test_llama_cpp_model_from_the_builtin_gguf_reaches_ready_and_answers() -> None:
    at = _custom("llama-cpp-completion")
    at.text_input(key="models_custom_name").set_value("my-smol")
    at.text_input(key="models_custom_p_llama-cpp-completion_model_path").set_value(
        str(smollm2_gguf())
    )
    at.number_input(key="models_custom_p_llama-cpp-completion_n_ctx").set_value(1024)
    at.button(key="models_custom_create").click().run()
    assert any("my-smol is READY" in s for s in _texts(at.success)), _texts(at.error)

    _open(at, "Try it")
    at.selectbox(key="models_try_model").set_value("my-smol").run()
    at.text_area(key="models_completion_prompts").set_value("The capital of France is")
    at.number_input(key="models_completion_max_tokens").set_value(8)
    at.button(key="models_completion_run").click().run()
    assert not at.exception and not at.error, _texts(at.error)
    assert at.info and at.info[-1].value.strip()


# -- templates (admin) --------------------------------------------------------------------------


def test_templates_tab_for_the_local_administrator() -> None:
    # Members do not see it: tests/test_pages_auth.py (the models page per role).
    assert "Templates" in [t.label for t in _app().run().tabs]


def test_admin_creates_a_template_from_json_and_sees_its_schema(admin: None) -> None:
    at = _open(_app(), "Templates")
    assert "llama-cpp-chat" in list(at.dataframe[0].value["Name"])
    at.text_area(key="models_tpl_json").set_value("{not json")
    at.button(key="models_tpl_json_create").click().run()
    assert any("Invalid JSON in the text box" in e for e in _texts(at.error))
    at.text_area(key="models_tpl_json").set_value(
        '{"name": "my-gguf", "model_type": "COMPLETION", "runtime": "llama-cpp",'
        ' "model_creation_parameters_schema": {"parameters":'
        ' [{"name": "model_path", "type": "str", "required": true}]}}'
    )
    at.button(key="models_tpl_json_create").click().run()
    assert any("Created template my-gguf" in s for s in _texts(at.success))
    at.selectbox(key="models_tpl_view").set_value("my-gguf").run()
    assert any("model_path" in str(j.value) for j in at.json), (
        "the parameter schema of the chosen template is shown"
    )


def test_template_form_rejects_a_runtime_that_cannot_serve_the_type(admin: None) -> None:
    at = _open(_app(), "Templates")
    at.text_input(key="models_tpl_name").set_value("wrong")
    at.selectbox(key="models_tpl_type").set_value("EMBEDDING")
    at.selectbox(key="models_tpl_runtime").set_value("llama-cpp")
    at.button(key="models_tpl_save").click().run()
    assert any("runtime llama-cpp serves" in e for e in _texts(at.error))


# -- usage ---------------------------------------------------------------------------------


def test_usage_empty_state_says_what_to_do() -> None:
    at = _open(_app(), "Usage")
    assert any("No calls to" in i and "Try it" in i for i in _texts(at.info))


def test_usage_matches_the_usage_statistics(mock_provider: Any) -> None:
    from studio.core.errors import ProviderUnavailableError

    _external("echo-chat", "CHAT_COMPLETION")
    with session_scope() as session:
        for _ in range(2):
            registry.execute(
                session=session, ref="echo-chat", payload={"prompt": "hi"}, source="ui"
            )
        mock_provider.replies.append(ProviderUnavailableError("down", provider="mock"))
        with pytest.raises(ProviderUnavailableError):
            registry.execute(session=session, ref="echo-chat", payload={"prompt": "hi"})
        registry.execute(session=session, ref="mock/echo", payload={"prompt": "hi"})
        stats = usage_statistics(session=session, model_name="echo-chat")
    at = _open(_app(), "Usage")
    at.selectbox(key="models_usage_model").set_value("echo-chat").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == str(stats.requests) == "3"
    assert metrics["Errors"] == "1"
    assert metrics["Tokens"] == str(stats.prompt_tokens + stats.response_tokens)
    assert len(at.get("plotly_chart")) == 2
    # An ad-hoc connection model has no deployment: counted by name, and said so.
    at.selectbox(key="models_usage_model").set_value("mock/echo").run()
    assert {m.label: m.value for m in at.metric}["Requests"] == "1"
    assert any("--by name" in c.value for c in at.caption)
