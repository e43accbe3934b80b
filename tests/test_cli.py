"""The `studio` command line, as a person or a script uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from studio.store import session_scope
from studio.store.tables import AuditEvent, ProviderConnection


def _write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def test_model_list_shows_the_builtin_zoo(cli: Any) -> None:
    result = cli("model", "list")
    assert result.code == 0
    assert "builtin/smollm2-135m-instruct" in result.out and "READY" in result.out
    rows = cli("model", "list", "--json").json()
    types = {r["name"]: r["model_type"] for r in rows}
    assert types["builtin/all-minilm-l6-v2"] == "EMBEDDING"
    assert types["builtin/all-minilm-l6-v2-rerank"] == "RERANKING"


def test_show_model_schemas_prints_all_five_types(cli: Any) -> None:
    schemas = cli("model-template", "show-model-schemas").json()
    assert {"EMBEDDING", "RERANKING", "COMPLETION", "CHAT_COMPLETION", "AGENT"} <= set(schemas)


def test_template_create_works_as_the_local_operator_and_is_audited(
    cli: Any, tmp_path: Path
) -> None:
    """No admin setting any more: the CLI acts as the local operator (an administrator),
    and the audit log says so."""
    path = _write(
        tmp_path,
        "t.json",
        {"name": "t", "model_type": "EMBEDDING", "runtime": "sentence-transformers"},
    )
    result = cli("model-template", "create", path)
    assert result.code == 0, result.err
    with session_scope() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.target_kind == "model-template"))
        made = [(e.action, e.target_name, e.actor, e.origin) for e in events]
    assert made == [("create", "t", "local operator", "cli")]


def test_template_then_model_with_missing_parameter(cli: Any, tmp_path: Path) -> None:
    tpl = {
        "name": "custom_reranking_model_template",
        "model_type": "RERANKING",
        "runtime": "sentence-transformers",
        "model_creation_parameters_schema": {
            "parameters": [
                {"name": "MODEL_PATH", "type": "str", "description": "dir", "required": True}
            ]
        },
    }
    created = cli("model-template", "create", _write(tmp_path, "t.json", tpl), "--json")
    assert created.code == 0, created.err
    tpl_id = created.json()["id"]
    listed = cli("model-template", "list")
    assert "custom_reranking_model_template" in listed.out and "MODEL_PATH*" in listed.out
    model_file = _write(
        tmp_path, "m.json", {"name": "my_reranker", "model_creation_parameters": {}}
    )
    result = cli("model", "create", "--model-template-id", tpl_id, model_file)
    assert result.code == 1
    assert "model_creation_parameters.MODEL_PATH: required" in result.err


def test_validate_request_rejects_with_field_and_rule(cli: Any, tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "bad.json",
        {"prompts": ["hi"], "temperature": 2, "stop_sequences": ["a", "b", "c", "d", "e"]},
    )
    result = cli("model", "validate-request", "builtin/smollm2-135m-completion", bad)
    assert result.code == 1
    assert "temperature: must be <= 1.0 (got 2)" in result.err
    assert "stop_sequences: at most 4 items allowed (got 5)" in result.err
    good = _write(tmp_path, "good.json", {"prompts": ["hi"], "temperature": 0})
    ok = cli("model", "validate-request", "builtin/smollm2-135m-completion", good)
    assert ok.code == 0 and "valid" in ok.out


def test_malformed_json_file_says_where(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.json", '{"texts": ["a",]}')
    result = cli("model", "execute", "builtin/all-minilm-l6-v2", path)
    assert result.code == 1
    assert "line 1 column" in result.err and "broken.json" in result.err
    missing = cli("model", "execute", "builtin/all-minilm-l6-v2", str(tmp_path / "none.json"))
    assert missing.code == 1 and "File not found" in missing.err


def test_unknown_model_exits_non_zero(cli: Any, tmp_path: Path) -> None:
    result = cli("model", "get", "nope")
    assert result.code == 1 and "No model, deployment or built-in called 'nope'" in result.err


def test_provider_keys_are_stored_encrypted_and_never_printed(cli: Any) -> None:
    secret = "sk-test-very-secret-value-1234"
    added = cli(
        "provider", "add", "myvllm", "--kind", "openai", "--base-url",
        "http://127.0.0.1:9/v1", "--api-key-stdin", stdin=secret + "\n",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert secret not in added.out + added.err
    listing = cli("provider", "list")
    as_json = cli("provider", "list", "--json")
    assert "myvllm" in listing.out
    assert secret not in listing.out and secret not in as_json.out
    assert secret[-4:] in as_json.json()[-1]["key_hint"]  # masked hint only
    with session_scope() as session:
        row = session.query(ProviderConnection).filter_by(name="myvllm").one()
        assert row.api_key_encrypted and secret not in row.api_key_encrypted
    removed = cli("provider", "remove", "myvllm")
    assert removed.code == 0
    assert "myvllm" not in cli("provider", "list").out


def test_provider_add_refuses_bad_input(cli: Any) -> None:
    bad_kind = cli("provider", "add", "x", "--kind", "nosuch", "--base-url", "http://h")
    assert bad_kind.code == 1 and "Unknown provider kind 'nosuch'" in bad_kind.err
    bad_name = cli("provider", "add", "Bad Name", "--kind", "openai")
    assert bad_name.code == 1 and "name:" in bad_name.err
    reserved = cli("provider", "add", "builtin", "--kind", "openai")
    assert reserved.code == 1 and "reserved" in reserved.err
    no_key = cli("provider", "add", "claude", "--kind", "anthropic")
    assert no_key.code == 1 and "needs an API key" in no_key.err


def test_execute_external_model_and_see_usage(cli: Any, tmp_path: Path, mock_provider: Any) -> None:
    model_file = _write(
        tmp_path,
        "m.json",
        {
            "name": "echo",
            "model_type": "COMPLETION",
            "connection": "mock",
            "provider_model": "echo-1",
        },
    )
    created = cli("model", "create", model_file, "--json")
    assert created.code == 0, created.err
    assert created.json()["status"] == "READY"
    req = _write(tmp_path, "req.json", {"prompts": ["hello world"]})
    result = cli("model", "execute", "echo", req, "--json")
    assert result.code == 0, result.err
    assert result.json()["completions"] == [["hello world", ["echo: hello world"]]]
    cli("price", "set", "echo-1", "--input", "2", "--output", "4")
    assert "echo-1" in cli("price", "list").out
    cli("model", "execute", "echo", req)
    usage = cli("model", "usage", "echo", "--json").json()
    assert usage["requests"] == 2
    assert usage["by_day"][0]["requests"] == 2
    assert usage["cost"] == pytest.approx((2 * 2 + 2 * 4) / 1e6)
    table = cli("model", "usage", "echo")
    assert "total: 2 requests, 0 errors" in table.out
    described = cli("model", "describe", "echo", "--json").json()
    assert described["deployments"][0]["status"] == "READY"
    assert cli("model", "delete", "echo").code == 0
    assert cli("model", "get", "echo").code == 1


@pytest.mark.builtin_models
def test_builtin_models_answer_offline_through_the_cli(cli: Any, tmp_path: Path) -> None:
    completion = cli(
        "model", "execute", "builtin/smollm2-135m-completion",
        _write(tmp_path, "c.json", {"prompts": ["The capital of France is"], "max_tokens": 8,
                                     "temperature": 0}),
        "--json",
    )  # fmt: skip
    assert completion.code == 0, completion.err
    text = completion.json()["completions"][0][1][0]
    assert text.strip()
    emb = cli(
        "model", "execute", "builtin/all-minilm-l6-v2",
        _write(tmp_path, "e.json", {"texts": ["hello", "world"]}), "--json",
    )  # fmt: skip
    vectors = emb.json()["embeddings"]
    assert [t for t, _ in vectors] == ["hello", "world"]
    assert all(len(v) == 384 for _, v in vectors)
    chunks = [
        "I like to have milk with cereals for breakfast.",
        "The largest continent is called Asia.",
        "The largest country is called Ibiza.",
    ]
    rr = cli(
        "model", "execute", "builtin/all-minilm-l6-v2-rerank",
        _write(tmp_path, "r.json", {"query": "What's the largest continent?", "chunks": chunks}),
        "--json",
    )  # fmt: skip
    scores = rr.json()["chunk_scores"]
    assert len(scores) == 3 and scores[1] > scores[0]
    chat = cli(
        "model", "execute", "builtin/smollm2-135m-instruct",
        _write(tmp_path, "ch.json", {"prompt": "Say hello.", "chat_history": [], "max_tokens": 16}),
        "--json",
    )  # fmt: skip
    assert chat.json()["message"]["role"] == "assistant"
    usage = cli("model", "usage", "builtin/smollm2-135m-completion", "--json").json()
    assert usage["requests"] == 1 and usage["response_tokens"] > 0


def test_model_whose_deployment_fails_exits_non_zero(cli: Any, tmp_path: Path) -> None:
    spec = {
        "name": "my-llama",
        "model_template_id": "llama-cpp-chat",
        "model_creation_parameters": {"model_path": str(tmp_path / "missing.gguf")},
    }
    result = cli("model", "create", _write(tmp_path, "m.json", spec))
    assert result.code == 1
    assert "FAILED" in result.out and "missing.gguf" in result.out
    assert cli("model", "deploy", "my-llama").code == 1
