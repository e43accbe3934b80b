"""Fine-tuning: teach a model from a dataset version; the result is a new model in the base
model's group, callable everywhere."""

from __future__ import annotations

import streamlit as st

from studio.ui import db_ready, page_header
from studio.ui.finetune_jobs import job_list
from studio.ui.finetune_new import new_job_form
from studio.ui.pickers import pick_app

page_header(
    "Fine-tuning",
    "The third way to improve a model, beside prompt engineering and retrieval: it learns "
    "from examples (a prompt and the answer you want). The built-in SmolLM2 trains here, "
    "on the CPU, as a small LoRA adapter; a model of an OpenAI-compatible connection is "
    "trained by its server. The dataset is checked before anything starts.",
)
db_ready()
app = pick_app("ft_app", why="Fine-tuning learns from an app's dataset")
with st.expander("New fine-tuning job", expanded=True):
    new_job_form(app.id)
st.subheader("Jobs")
job_list(app.id)
