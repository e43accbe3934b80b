"""The Deploy page, driven with AppTest: deploy, endpoints, redeploy/rollback/undeploy, API
keys shown once, and snippets that work as shown against a real gateway on loopback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from studio.core.errors import RevokedApiKeyError, StudioError
from studio.core.settings import reset_settings
from studio.gateway import server
from studio.services import api_keys, endpoint_calls, endpoints, members, users
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.store import session_scope
from studio.ui import gateway_url
from studio.ui.deploy_keys import SCOPE_HELP
from tests.gateway.conftest import make_variant, save_template

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = str(ROOT / "pages" / "deploy.py")
TEMPLATE = "Write about {{event}} for {{who}}."


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    gateway_url.clear()
    api_keys.clear_key_cache()
    endpoint_calls.clear_endpoint_cache()
    yield
    gateway_url.clear()


def _app(*, variants: int = 1, dataset: bool = True) -> int:
    """'Marketing copy' with variant 'email' (``variants`` versions) and a dataset."""
    with session_scope() as session:
        app = create_app(session=session, name="Marketing copy")
        assert app.id is not None
        variant_id = make_variant(session, app.id, "email", TEMPLATE)
        for n in range(2, variants + 1):
            save_template(session, variant_id, f"v{n}: " + TEMPLATE)
        if dataset:
            upload_dataset(
                session=session,
                app_id=app.id,
                name="events",
                data=b"event,who,size\nSpring gala,young professionals,40\n",
                filename="events.csv",
            )
        return app.id


def _open() -> AppTest:
    at = AppTest.from_file(DEPLOY, default_timeout=60)
    at.run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error], [e.value for e in at.error]


def _codes(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def _snippet(at: AppTest, start: str) -> str:
    return next(c for c in _codes(at) if c.startswith(start))


def _deploy(at: AppTest, name: str = "") -> AppTest:
    at.text_input(key="deploy_name").set_value(name)
    at.button(key="deploy_button").click().run()
    _ok(at)
    return at


TABLE_COLUMNS = {"endpoints": "Endpoint", "keys": "Key", "history": "Change"}


def _table(at: AppTest, which: str) -> Any:
    """The page's endpoints, keys or history table (AppTest dataframes carry no key)."""
    for frame in at.dataframe:
        if TABLE_COLUMNS[which] in frame.value.columns:
            return frame.value
    raise AssertionError(f"no {which} table on the page")


# -- empty states ----------------------------------------------------------------------


def test_without_apps_the_page_points_to_the_apps_page() -> None:
    at = _open()
    assert any("No apps yet. Endpoints serve an app's variants" in i.value for i in at.info)


def test_an_app_without_variants_says_how_to_make_one_and_how_to_start_the_gateway() -> None:
    with session_scope() as session:
        create_app(session=session, name="Support")
    at = _open()
    infos = [i.value for i in at.info]
    assert any("'Support' has no saved variant to deploy yet" in i for i in infos)
    assert any("'Support' has no endpoints yet" in i for i in infos)
    assert any("No API keys yet" in i for i in infos)
    # STUDIO_EMBEDDED_GATEWAY=0 in tests and nothing listens: the page says how to start it.
    [warning] = [w.value for w in at.warning]
    assert "The gateway is not answering at http://127.0.0.1:8765" in warning
    assert "studio serve" in warning


# -- deploy, redeploy, roll back, undeploy -------------------------------------------------


def test_deploy_lists_the_endpoint_with_its_url_and_fills_the_snippets(mock_provider: Any) -> None:
    _app()
    at = _open()
    assert at.button(key="deploy_button").label == "Deploy to 'marketing-copy-email'"
    _deploy(at)
    url = "http://127.0.0.1:8765/v1/endpoints/marketing-copy-email/generate"
    [success] = [s.value for s in at.success]
    assert "Deployed 'email' v1 to endpoint 'marketing-copy-email'" in success and url in success
    table = _table(at, "endpoints")
    assert list(table["Endpoint"]) == ["marketing-copy-email"]
    assert list(table["Status"]) == ["live"] and list(table["Version"]) == [1]
    assert list(table["URL"]) == [url]
    assert url in _codes(at)

    curl = _snippet(at, "curl ")
    assert url in curl and "$STUDIO_API_KEY" in curl
    body = json.loads(curl.split(" -d ", 1)[1].strip("'"))
    assert body == {"inputs": {"event": "Spring gala", "who": "young professionals"}}
    python = _snippet(at, "import os\n\nimport httpx")
    assert url in python and '"event": "Spring gala"' in python
    assert 'os.environ["STUDIO_API_KEY"]' in python
    js = _snippet(at, "const apiKey")
    assert url in js and "process.env.STUDIO_API_KEY" in js and '"who"' in js
    sdk = _snippet(at, "import os\n\nfrom openai import OpenAI")
    assert 'base_url="http://127.0.0.1:8765/v1"' in sdk
    assert 'model="marketing-copy-email"' in sdk and "extra_body=" in sdk
    assert any("`event`, `who`" in c.value for c in at.caption)


def test_snippets_use_placeholders_for_variables_no_dataset_has(mock_provider: Any) -> None:
    _app(dataset=False)
    at = _deploy(_open(), "email")
    curl = _snippet(at, "curl ")
    assert json.loads(curl.split(" -d ", 1)[1].strip("'")) == {
        "inputs": {"event": "your event", "who": "your who"}
    }


def test_a_bad_endpoint_name_is_a_sentence_not_a_traceback(mock_provider: Any) -> None:
    _app()
    at = _open()
    at.text_input(key="deploy_name").set_value("Has spaces!")
    at.button(key="deploy_button").click().run()
    assert not at.exception
    assert any("endpoint name" in e.value for e in at.error)
    with session_scope() as session:
        assert endpoints.list_endpoints(session=session) == []


def test_redeploy_rollback_and_undeploy(mock_provider: Any) -> None:
    _app(variants=3)
    at = _open()
    at.selectbox(key="deploy_version_1").set_value(1).run()
    _deploy(at, "email")
    assert list(_table(at, "endpoints")["Version"]) == [1]
    # Nothing to roll back to yet.
    assert at.button(key="deploy_rollback_1").disabled
    assert any("Nothing to roll back to yet" in c.value for c in at.caption)

    # Redeploy a newer version: the newest is offered first; pick v2.
    assert at.selectbox(key="deploy_newer_1").options == ["v3 (latest)", "v2"]
    at.selectbox(key="deploy_newer_1").set_value(2).run()
    at.button(key="deploy_redeploy_1").click().run()
    _ok(at)
    assert any("'email' serves v2 of 'email' now." in s.value for s in at.success)
    assert list(_table(at, "endpoints")["Version"]) == [2]

    at.selectbox(key="deploy_newer_1").set_value(3).run()
    at.button(key="deploy_redeploy_1").click().run()
    assert list(_table(at, "endpoints")["Version"]) == [3]
    assert any("v3 is the newest version" in c.value for c in at.caption)

    # Roll back to the previous version, then to a chosen one.
    at.button(key="deploy_rollback_1").click().run()
    _ok(at)
    assert any("Rolled 'email' back to v2" in s.value for s in at.success)
    assert list(_table(at, "endpoints")["Version"]) == [2]
    at.selectbox(key="deploy_rollback_version_1").set_value(1).run()
    at.button(key="deploy_rollback_to_1").click().run()
    assert list(_table(at, "endpoints")["Version"]) == [1]
    history = _table(at, "history")
    assert list(history["Change"]) == [
        "rolled back",
        "rolled back",
        "deployed",
        "deployed",
        "deployed",
    ]
    assert list(history["Version"]) == ["v1", "v2", "v3", "v2", "v1"]

    # Undeploy needs a confirmation; afterwards the endpoint is off and can come back.
    assert at.button(key="deploy_undeploy_1").disabled
    at.checkbox(key="deploy_sure_1").check().run()
    at.button(key="deploy_undeploy_1").click().run()
    _ok(at)
    assert any("Undeployed 'email'" in i.value for i in at.info)
    assert list(_table(at, "endpoints")["Status"]) == ["off"]
    assert any("'email' is switched off" in w.value for w in at.warning)
    with pytest.raises(StudioError):
        endpoint_calls.load_runtime("email")
    at.button(key="deploy_again_1").click().run()
    assert list(_table(at, "endpoints")["Status"]) == ["live"]
    assert endpoint_calls.load_runtime("email") is not None


# -- API keys -----------------------------------------------------------------------------


def test_a_new_key_is_shown_once_then_only_its_prefix(mock_provider: Any) -> None:
    app_id = _app()
    at = _deploy(_open(), "email")
    at.text_input(key="deploy_key_name").set_value("website")
    at.number_input(key="deploy_key_limit").set_value(30)
    at.button(key="deploy_key_create").click().run()
    _ok(at)
    secrets = [c for c in _codes(at) if c.startswith("sk-studio-")]
    assert len(secrets) == 1
    secret = secrets[0]
    assert any("will not be shown again" in w.value for w in at.warning)
    assert api_keys.verify_key(secret=secret).app_id == app_id
    table = _table(at, "keys")
    assert list(table["Name"]) == ["website"]
    assert list(table["Key"]) == [secret[:14] + "…"]
    assert list(table["Requests/minute"]) == ["30"] and list(table["Status"]) == ["active"]
    assert list(table["Scopes"]) == ["invoke"]
    assert list(table["Last used"]) == ["never"]
    assert secret not in _snippet(at, "curl ")  # placeholders unless asked

    at.checkbox(key="deploy_key_in_snippets").check().run()
    assert f"Bearer {secret}" in _snippet(at, "curl ")
    assert any("contain your new API key" in w.value for w in at.warning)

    at.button(key="deploy_key_dismiss").click().run()
    _ok(at)
    assert not any(secret in c for c in _codes(at))
    assert "deploy_new_key" not in at.session_state
    assert "$STUDIO_API_KEY" in _snippet(at, "curl ")
    assert list(_table(at, "keys")["Key"]) == [secret[:14] + "…"]


def test_a_key_gets_the_scopes_picked(mock_provider: Any) -> None:
    _app()
    at = _deploy(_open(), "email")
    picker = at.multiselect(key="deploy_key_scopes")
    assert picker.value == ["invoke"]  # the default
    assert picker.options == [SCOPE_HELP[s] for s in ("invoke", "models", "manage")]  # admin
    picker.set_value(["invoke", "models"])
    at.button(key="deploy_key_create").click().run()
    _ok(at)
    secret = next(c for c in _codes(at) if c.startswith("sk-studio-"))
    assert api_keys.verify_key(secret=secret).scopes == {"invoke", "models"}
    assert list(_table(at, "keys")["Scopes"]) == ["invoke, models"]
    assert at.multiselect(key="deploy_key_scopes").value == ["invoke"]  # reset for the next


def test_a_member_is_not_offered_the_manage_scope(
    mock_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_id = _app()
    monkeypatch.setenv("STUDIO_AUTH", "local")
    reset_settings()
    with session_scope() as session:
        users.create_user(session=session, name="ada", password="a long password 1", role="admin")
        mia = users.create_user(
            session=session, name="mia", password="a long password 1", role="member"
        )
        members.add_member(session=session, app=app_id, user=mia.id)
        token = users.start_session(session=session, user_id=mia.id)
    at = AppTest.from_file(DEPLOY, default_timeout=60)
    at.session_state["studio_session_token"] = token
    at.run()
    _ok(at)
    picker = at.multiselect(key="deploy_key_scopes")
    assert picker.options == [SCOPE_HELP["invoke"], SCOPE_HELP["models"]]
    picker.set_value(["models"])
    at.button(key="deploy_key_create").click().run()
    _ok(at)
    secret = next(c for c in _codes(at) if c.startswith("sk-studio-"))
    assert api_keys.verify_key(secret=secret).scopes == {"models"}


def test_the_key_is_forgotten_when_the_user_leaves_the_page(mock_provider: Any) -> None:
    _app()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/deploy.py").run()
    at.button(key="deploy_key_create").click().run()
    _ok(at)
    secret = next(c for c in _codes(at) if c.startswith("sk-studio-"))
    at.switch_page("pages/monitoring.py").run()
    _ok(at)
    at.switch_page("pages/deploy.py").run()
    _ok(at)
    assert not any(secret in c for c in _codes(at))
    assert "deploy_new_key" not in at.session_state
    assert list(_table(at, "keys")["Name"]) == ["default"]


def test_revoke_a_key(mock_provider: Any) -> None:
    _app()
    at = _open()
    at.button(key="deploy_key_create").click().run()
    secret = next(c for c in _codes(at) if c.startswith("sk-studio-"))
    assert at.button(key="deploy_revoke").disabled
    at.checkbox(key="deploy_revoke_sure").check().run()
    at.button(key="deploy_revoke").click().run()
    _ok(at)
    assert any("Revoked key 'default'" in s.value for s in at.success)
    assert not any(secret in c for c in _codes(at))  # revoking also hides the new key
    [status] = list(_table(at, "keys")["Status"])
    assert status.startswith("revoked ")
    assert any("Every key is revoked" in c.value for c in at.caption)
    with pytest.raises(RevokedApiKeyError):
        api_keys.verify_key(secret=secret)


# -- the snippets work as shown -------------------------------------------------------------


@pytest.fixture
def live_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The gateway on a free loopback port, in this process (so the mock provider answers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STUDIO_GATEWAY_PORT", str(port))
    reset_settings()
    url = server.ensure_embedded_gateway()
    try:
        yield url
    finally:
        embedded = server._embedded
        if embedded is not None:
            embedded[0].should_exit = True
            embedded[1].join(10)
            server._embedded = None


def test_snippets_work_as_shown_against_a_running_gateway(
    mock_provider: Any, live_gateway: str, tmp_path: Path
) -> None:
    _app()
    at = _deploy(_open(), "email")
    assert any(f"The gateway is running at {live_gateway}" in c.value for c in at.caption)
    at.button(key="deploy_key_create").click().run()
    secret = next(c for c in _codes(at) if c.startswith("sk-studio-"))
    env = {**os.environ, "STUDIO_API_KEY": secret}
    expected = "echo: Write about Spring gala for young professionals."

    # curl, exactly as shown (the key from the environment).
    curl = _snippet(at, "curl ")
    if shutil.which("curl"):
        done = subprocess.run(
            ["bash", "-c", curl], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["output"] == expected and answer["endpoint"] == "email"

    # Python (httpx), exactly as shown.
    printed = io.StringIO()
    os.environ["STUDIO_API_KEY"] = secret
    try:
        with contextlib.redirect_stdout(printed):
            exec(_snippet(at, "import os\n\nimport httpx"), {})
    finally:
        del os.environ["STUDIO_API_KEY"]
    assert printed.getvalue().strip() == expected

    # JavaScript (fetch), as an ES module under Node.
    if shutil.which("node"):
        script = tmp_path / "call.mjs"
        script.write_text(_snippet(at, "const apiKey"))
        done = subprocess.run(
            ["node", str(script)], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected

    # The key filled in: still works.
    at.checkbox(key="deploy_key_in_snippets").check().run()
    filled = _snippet(at, "curl ")
    assert secret in filled
    if shutil.which("curl"):
        done = subprocess.run(["bash", "-c", filled], capture_output=True, text=True, timeout=30)
        assert json.loads(done.stdout)["output"] == expected

    # The OpenAI SDK snippet, unchanged, when the SDK is installed.
    try:
        import openai  # noqa: F401
    except ImportError:
        body = {"model": "email", "messages": [], "inputs": {"event": "Spring gala"}}
        body["inputs"]["who"] = "young professionals"
        reply = httpx.post(
            f"{live_gateway}/v1/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json=body,
            timeout=30,
        )
        assert reply.json()["choices"][0]["message"]["content"] == expected
    else:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(_snippet(at, "import os\n\nfrom openai import OpenAI"), {})
        assert printed.getvalue().strip() == expected
