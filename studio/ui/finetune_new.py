"""The Fine-tuning page's form: a dataset version, the base model, the columns, and the
hyperparameters with their defaults explained. Pressing Start checks everything first
(:func:`studio.services.finetune.create_job`); a problem is shown as a sentence and no
job starts."""

from __future__ import annotations

import streamlit as st

from studio.models.connections import list_connections
from studio.models.registry import list_models
from studio.services.datasets import list_datasets
from studio.services.finetune import FineTuneCreate, create_job
from studio.ui.common import show_error, studio_session
from studio.ui.pickers import link_to, pick_dataset_version

__all__ = ["BASES", "new_job_form"]

BASES = ["builtin/smollm2-135m-instruct", "builtin/smollm2-135m-completion"]
FLASH = "ft_flash"


def _bases() -> list[str]:
    """The built-in SmolLM2, then the registered models of OpenAI-kind connections."""
    with studio_session() as session:
        openai = {c.name for c in list_connections(session=session) if c.kind == "openai"}
        remote = [
            m.name
            for m in list_models(session=session)
            if m.connection in openai and not m.is_builtin
        ]
    return [*BASES, *sorted(remote)]


def _start(app_id: int, version_id: int) -> None:
    s = st.session_state
    messages = s.ft_format == "Chat conversations (JSON)"
    try:
        data = FineTuneCreate(
            base_model=s.ft_base,
            dataset_version_id=version_id,
            prompt_column=None if messages else s.ft_prompt,
            completion_column=None if messages else s.ft_completion,
            messages_column=s.ft_messages if messages else None,
            epochs=s.ft_epochs,
            learning_rate=s.ft_lr,
            lora_rank=s.ft_rank,
            validation_share=s.ft_val / 100,
            name=s.ft_name.strip() or None,
        )
        job = create_job(data=data, actor="ui")
    except Exception as exc:
        s.ft_error = exc
        return
    s[FLASH] = (
        f"Fine-tuning job {job.id} started: {job.train_rows} training rows and "
        f"{job.validation_rows} validation rows, on {job.base_model}. It runs in its own "
        "worker process; follow it under Jobs below."
    )


def new_job_form(app_id: int) -> None:
    with studio_session() as session:
        datasets = list_datasets(session=session, app_id=app_id)
    if not datasets:
        st.info(
            "This app has no datasets yet. Upload a CSV with a prompt column and a column of "
            "the answers the model should learn (tens to hundreds of rows) on the Datasets page."
        )
        link_to("pages/datasets.py", "Go to Datasets", ":material/table:")
        return
    version = pick_dataset_version(datasets, "ft")
    assert version.id is not None
    columns = list(version.columns)
    for key, default in {
        "ft_epochs": 3, "ft_lr": 1e-3, "ft_rank": 8, "ft_val": 10, "ft_name": "",
        "ft_format": "Prompt and completion columns",
    }.items():  # fmt: skip
        if key not in st.session_state:
            st.session_state[key] = default
    st.selectbox(
        "Base model",
        _bases(),
        key="ft_base",
        help="The built-in SmolLM2 trains here, on this machine's CPU (a LoRA adapter); a "
        "model of an OpenAI-compatible connection is trained by its server.",
    )
    st.radio(
        "Examples", ["Prompt and completion columns", "Chat conversations (JSON)"],
        key="ft_format", horizontal=True,
    )  # fmt: skip
    if st.session_state.ft_format == "Chat conversations (JSON)":
        st.selectbox(
            "Chat column", columns, key="ft_messages",
            help='Each cell a JSON list of messages, the last one the assistant\'s answer.',
        )  # fmt: skip
    else:
        left, right = st.columns(2)
        left.selectbox("Prompt column", columns, key="ft_prompt", help="What the model is asked.")
        right.selectbox(
            "Completion column", columns, index=min(1, len(columns) - 1), key="ft_completion",
            help="The answer the model should learn to give.",
        )  # fmt: skip
    a, b, c, d = st.columns(4)
    a.number_input(
        "Epochs", min_value=1, max_value=20, key="ft_epochs",
        help="Passes over the training rows. 3 suits tens to hundreds of rows; more can "
        "make the model repeat its examples word for word.",
    )  # fmt: skip
    b.number_input(
        "Learning rate", min_value=1e-6, max_value=0.1, format="%.0e", key="ft_lr",
        help="How big each training step is. 1e-3 lets the adapter learn from tens of rows "
        "in a few epochs; lower it for thousands of rows, or if the loss jumps around.",
    )  # fmt: skip
    c.number_input(
        "LoRA rank", min_value=1, max_value=64, key="ft_rank",
        help="Size of the adapter: 8 is plenty for a format or a vocabulary; higher learns "
        "more and trains slower. Local jobs only.",
    )  # fmt: skip
    d.number_input(
        "Validation %", min_value=0, max_value=50, key="ft_val",
        help="Rows kept out of training to measure the validation loss: if it stops "
        "falling while the training loss does, the model is memorising.",
    )  # fmt: skip
    st.text_input(
        "Name of the new model (optional)", key="ft_name",
        help="Default: the base's name and the job's number.",
    )  # fmt: skip
    st.button(
        "Start fine-tuning", type="primary", key="ft_start", on_click=_start,
        args=(app_id, version.id),
    )  # fmt: skip
    if "ft_error" in st.session_state:
        show_error(st.session_state.pop("ft_error"))
    if FLASH in st.session_state:
        st.success(st.session_state.pop(FLASH))
