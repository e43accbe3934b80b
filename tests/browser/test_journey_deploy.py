"""Journey (c): deploy a variant, call it with the curl snippet the page shows, and find
that request on the Monitoring page, in a real browser.

The variant's model is ``local/fake-chat`` on a fake OpenAI-compatible server the test
starts on loopback, so the studio (a separate ``streamlit run`` process with its
embedded gateway) reaches it like any self-hosted model server. Screenshots land in
test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.variants import VariantConfig, create_variant
from studio.store import session_scope
from tests.browser.conftest import ARTIFACTS
from tests.providers.fakes import FaultyOpenAIServer, answer_for

TEMPLATE = "Write about {{event}} for {{who}}."
EXPECTED = answer_for("Write about Spring gala for young professionals.")


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"journey-c-{name}.png"), full_page=True)


def _nav(page: Any, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", name=name, exact=True).wait_for(timeout=30_000)


def _code(page: Any, starts: str) -> str:
    """The text of the visible code block that starts with ``starts``."""
    blocks = page.locator("pre code").filter(has_text=starts).locator("visible=true")
    blocks.first.wait_for(timeout=30_000)
    text: str = blocks.first.inner_text()
    return text.strip()


@pytest.fixture
def app_with_variant(
    studio_env: Path, faulty_server: Callable[..., FaultyOpenAIServer]
) -> FaultyOpenAIServer:
    """An app, a dataset and a variant on a local fake model server, made through the
    services in the studio's data directory before the studio starts."""
    server = faulty_server()
    with session_scope() as session:
        add_connection(
            session=session, data=ConnectionCreate(name="local", kind="openai", base_url=server.url)
        )
        app = create_app(session=session, name="Marketing copy")
        assert app.id is not None
        upload_dataset(
            session=session,
            app_id=app.id,
            name="events",
            data=b"event,who\nSpring gala,young professionals\nBook fair,students\n",
            filename="events.csv",
        )
        create_variant(
            session=session,
            app_id=app.id,
            name="email",
            config=VariantConfig(
                model="local/fake-chat", prompt=PromptTemplate.completion(TEMPLATE)
            ),
        )
    return server


def test_deploy_call_with_the_curl_snippet_and_find_the_request(
    app_with_variant: FaultyOpenAIServer,
    studio_url: str,
    page: Any,
    tmp_path: Path,
    studio_env: Path,
) -> None:
    page.goto(studio_url)
    page.get_by_role("heading", name="Prompt Studio").wait_for(timeout=60_000)

    # 1. Deploy the variant with one click; the embedded gateway is up.
    _nav(page, "Deploy")
    page.get_by_text("The gateway is running at").wait_for(timeout=30_000)
    page.get_by_role("button", name="Deploy to 'marketing-copy-email'").click()
    page.get_by_text("Deployed 'email' v1 to endpoint 'marketing-copy-email'").wait_for(
        timeout=30_000
    )
    page.get_by_text("is live with this version already").wait_for(timeout=30_000)
    page.get_by_role("heading", name="Call 'marketing-copy-email'").wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)  # tables draw on a canvas a moment after the run ends
    _shot(page, "1-deployed")
    page.get_by_text("History (newest first)").scroll_into_view_if_needed()
    _shot(page, "1-endpoint")

    # 2. Create an API key: shown once.
    page.get_by_role("textbox", name="Key name").fill("journey")
    page.get_by_role("button", name="Create API key").click()
    page.get_by_text("It will not be shown again").wait_for(timeout=30_000)
    secret = _code(page, "sk-studio-")
    assert re.fullmatch(r"sk-studio-\S+", secret)
    page.get_by_text("It will not be shown again").scroll_into_view_if_needed()
    _shot(page, "2-key")

    # 3. Copy the curl snippet from the page and run it as shown.
    curl = _code(page, "curl -sS")
    assert "/v1/endpoints/marketing-copy-email/generate" in curl and "$STUDIO_API_KEY" in curl
    env = {**os.environ, "STUDIO_API_KEY": secret}
    if shutil.which("curl"):
        done = subprocess.run(
            ["bash", "-c", curl], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
    else:  # the same request, from the snippet's URL and body
        url = re.search(r"curl -sS -X POST (\S+)", curl)
        body = curl.split(" -d ", 1)[1].strip().strip("'")
        assert url is not None
        answer = httpx.post(
            url.group(1),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            content=body,
            timeout=60,
        ).json()
    assert answer["output"] == EXPECTED, answer
    request_id = answer["request_id"]

    # 4. The OpenAI SDK snippet: unchanged when the SDK is installed; otherwise the same
    #    request the SDK would send (base_url + /chat/completions, extra_body merged).
    page.get_by_role("tab", name="OpenAI SDK (Python)").click()
    sdk = _code(page, "from openai import OpenAI")
    _shot(page, "3-openai-snippet")
    try:
        import openai  # noqa: F401
    except ImportError:
        base = re.search(r'base_url="([^"]+)"', sdk)
        model = re.search(r'model="([^"]+)"', sdk)
        inputs = re.search(r'extra_body=\{"inputs": (\{.*?\})\}', sdk, re.S)
        assert base and model and inputs
        reply = httpx.post(
            f"{base.group(1)}/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={
                "model": model.group(1),
                "messages": [],
                **{"inputs": json.loads(inputs.group(1))},
            },
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == EXPECTED
    else:
        script = tmp_path / "sdk.py"
        script.write_text(sdk)
        done = subprocess.run(
            ["python", str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == EXPECTED

    # 5. Find the request on the Monitoring page.
    _nav(page, "Monitoring")
    page.get_by_text("Latency p50").wait_for(timeout=30_000)
    search = page.get_by_role("textbox", name="Search")
    search.fill(request_id)
    search.press("Enter")
    page.get_by_text(f"{request_id}").first.wait_for(state="attached", timeout=30_000)
    page.get_by_text("Request body").wait_for(timeout=30_000)
    detail = page.locator("code").filter(has_text=request_id)
    detail.first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    _shot(page, "4-monitoring")
    page.get_by_text("Request body").scroll_into_view_if_needed()
    _shot(page, "4-request-detail")
    assert "Something went wrong" not in page.content()
    assert secret not in page.content()

    # 6. Back on Deploy, the key is gone for good: only its prefix is listed.
    _nav(page, "Deploy")
    page.get_by_text("The gateway is running at").wait_for(timeout=30_000)
    page.get_by_text("Call 'marketing-copy-email'").wait_for(timeout=30_000)
    assert secret not in page.content()
    _shot(page, "5-deploy-again")
    assert secret not in (studio_env.parent / "streamlit.log").read_text()  # never logged
