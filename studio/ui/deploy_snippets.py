"""Ready-to-paste code that calls a deployed endpoint: curl, Python, JavaScript, OpenAI SDK.

The snippet texts are plain functions (tested without Streamlit); :func:`snippets_panel`
draws them in tabs. Snippets read the key from ``STUDIO_API_KEY`` unless the user
chose to fill in a key they have just created.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence

import streamlit as st

from studio.services.datasets import list_datasets, load_rows
from studio.services.endpoints import EndpointPublic
from studio.services.retrieval_spec import caller_variables
from studio.services.variants import get_version, version_config
from studio.ui.common import studio_session

__all__ = [
    "KEY_ENV",
    "curl_snippet",
    "endpoint_variables",
    "example_inputs",
    "javascript_snippet",
    "openai_snippet",
    "python_snippet",
    "snippets_panel",
]

KEY_ENV = "STUDIO_API_KEY"


def _inputs_json(inputs: Mapping[str, str], indent: int | None = None) -> str:
    return json.dumps(dict(inputs), ensure_ascii=False, indent=indent)


def _indented(text: str, spaces: int) -> str:
    """Indent every line but the first (for a value placed after ``key=``)."""
    pad = " " * spaces
    return text.replace("\n", "\n" + pad)


def curl_snippet(url: str, inputs: Mapping[str, str], key: str | None = None) -> str:
    """A shell command; the key comes from ``$STUDIO_API_KEY`` unless ``key`` is given."""
    auth = f"Bearer {key}" if key else f"Bearer ${KEY_ENV}"
    body = shlex.quote(json.dumps({"inputs": dict(inputs)}, ensure_ascii=False))
    return (
        f"curl -sS -X POST {shlex.quote(url)} \\\n"
        f'  -H "Authorization: {auth}" \\\n'
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {body}"
    )


def python_snippet(url: str, inputs: Mapping[str, str], key: str | None = None) -> str:
    """httpx (``pip install httpx``); prints the endpoint's output."""
    secret = json.dumps(key) if key else f'os.environ["{KEY_ENV}"]'
    return (
        "import os\n\n"
        "import httpx\n\n"
        f"api_key = {secret}\n"
        "response = httpx.post(\n"
        f"    {json.dumps(url)},\n"
        '    headers={"Authorization": f"Bearer {api_key}"},\n'
        f'    json={{"inputs": {_indented(_inputs_json(inputs, 4), 4)}}},\n'
        "    timeout=60,\n"
        ")\n"
        "response.raise_for_status()\n"
        'print(response.json()["output"])\n'
    )


def javascript_snippet(url: str, inputs: Mapping[str, str], key: str | None = None) -> str:
    """fetch (Node 18+ as an ES module, or a browser); logs the endpoint's output."""
    secret = json.dumps(key) if key else f"process.env.{KEY_ENV}"
    return (
        f"const apiKey = {secret};\n"
        f"const response = await fetch({json.dumps(url)}, {{\n"
        '  method: "POST",\n'
        "  headers: {\n"
        '    "Authorization": `Bearer ${apiKey}`,\n'
        '    "Content-Type": "application/json",\n'
        "  },\n"
        f"  body: JSON.stringify({{ inputs: {_indented(_inputs_json(inputs, 2), 2)} }}),\n"
        "});\n"
        "if (!response.ok) throw new Error(await response.text());\n"
        "const data = await response.json();\n"
        "console.log(data.output);\n"
    )


def openai_snippet(
    base_url: str, endpoint: str, inputs: Mapping[str, str], key: str | None = None
) -> str:
    """The official OpenAI SDK against the gateway's OpenAI-compatible surface."""
    secret = json.dumps(key) if key else f'os.environ["{KEY_ENV}"]'
    return (
        "import os\n\n"
        "from openai import OpenAI\n\n"
        f"client = OpenAI(base_url={json.dumps(base_url + '/v1')}, api_key={secret})\n"
        "completion = client.chat.completions.create(\n"
        f"    model={json.dumps(endpoint)},\n"
        "    messages=[],  # optional: messages here are sent after the endpoint's prompt\n"
        f'    extra_body={{"inputs": {_indented(_inputs_json(inputs, 4), 4)}}},\n'
        ")\n"
        "print(completion.choices[0].message.content)\n"
    )


def endpoint_variables(endpoint: EndpointPublic) -> list[str]:
    """The variables a caller sends to the version the endpoint serves (not the ones its
    retrieval step fills in)."""
    if endpoint.variant_version_id is None:
        return []
    with studio_session() as session:
        version = get_version(session=session, version_id=endpoint.variant_version_id)
        config = version_config(version)
        return caller_variables(config.prompt, config.retrieval)


def example_inputs(app_id: int, variables: Sequence[str]) -> dict[str, str]:
    """Values for ``variables``: the first row of the app's dataset that has the most of
    them; variables no dataset has get a placeholder."""
    best: dict[str, str] = {}
    if variables:
        with studio_session() as session:
            for dataset in list_datasets(session=session, app_id=app_id):
                shared = [v for v in variables if v in dataset.columns]
                if len(shared) <= len(best) or not dataset.row_count:
                    continue
                first = load_rows(session=session, version_id=dataset.latest_version_id)[0]
                best = {v: first[v] for v in shared}
                if len(best) == len(variables):
                    break
    return {v: best.get(v, f"your {v}") for v in variables}


def snippets_panel(*, base_url: str, endpoint: EndpointPublic, key: str | None) -> None:
    """Tabs with the four snippets for ``endpoint``; ``key`` fills in a just-created key."""
    variables = endpoint_variables(endpoint)
    inputs = example_inputs(endpoint.app_id, variables)
    url = base_url + endpoint.path
    if variables:
        st.caption(
            "The endpoint's prompt uses "
            + ", ".join(f"`{v}`" for v in variables)
            + ": send a value for each under `inputs`. The examples come from your dataset."
        )
    else:
        st.caption("The endpoint's prompt has no variables: send an empty `inputs` object.")
    if key:
        st.warning(
            "These snippets contain your new API key. Do not commit them or share them; "
            f"keep the key in an environment variable such as `{KEY_ENV}` instead."
        )
    else:
        st.caption(
            f"Set your API key first: `export {KEY_ENV}=sk-studio-…` (create one under "
            "**API keys** above; it is shown only once)."
        )
    tabs = st.tabs(  # tracked: a rerun keeps the language the person picked
        ["curl", "Python", "JavaScript", "OpenAI SDK (Python)"],
        key="snippet_tab",
        on_change="rerun",
    )
    with tabs[0]:
        st.code(curl_snippet(url, inputs, key), language="bash", wrap_lines=True)
    with tabs[1]:
        st.caption("Needs `pip install httpx`.")
        st.code(python_snippet(url, inputs, key), language="python")
    with tabs[2]:
        st.caption("Node 18 or newer: save as `call.mjs` and run `node call.mjs`.")
        st.code(javascript_snippet(url, inputs, key), language="javascript")
    with tabs[3]:
        st.caption(
            "Needs `pip install openai`. The gateway speaks the OpenAI API: the model is the "
            "endpoint's name and the prompt's variables go in `extra_body`."
        )
        st.code(openai_snippet(base_url, endpoint.name, inputs, key), language="python")
