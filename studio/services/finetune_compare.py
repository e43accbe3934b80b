"""Compare a fine-tuned model with its base on the job's validation rows.

The rows a job kept out of training (the same seeded split the job used) become a dataset
of their own in the job's app, "<dataset> · validation of fine-tune #N", whose expected
output is the completion column. A comparison then runs the base and the fine-tuned model
on them with the same prompt (the prompt column as the user's message, which is how the
job trained), temperature 0, and scores both against the expected answers (exact match
and ROUGE-L), so the summary says in numbers and with a paired test whether fine-tuning
helped. Asking again opens the same comparison.

Rules: reading the job needs access to its app; making the comparison also the admin or
member role (the checks of :mod:`studio.services.finetune`, :mod:`studio.services.datasets`
and :mod:`studio.services.comparisons`).
"""

from __future__ import annotations

from sqlmodel import Session, col, update

from studio.core.errors import ConfigError
from studio.core.templates import PromptTemplate
from studio.services.comparisons import ContenderSpec, create_comparison
from studio.services.datasets import get_version, subset_version
from studio.services.evaluations import EvaluatorConfig
from studio.services.finetune import KIND, get_job
from studio.services.finetune_records import load_split
from studio.services.members import require_member_role
from studio.store.tables import Comparison, Dataset, Job

__all__ = ["EVALUATORS", "compare_with_base"]

EVALUATORS = (
    EvaluatorConfig(id="exact_match"),
    EvaluatorConfig(id="rouge_l"),
)


def _max_tokens(completions: list[str]) -> int:
    """Room for the longest expected answer (about two tokens a word), 32 to 256."""
    longest = max((len(c.split()) for c in completions), default=0)
    return max(32, min(256, 2 * longest + 16))


def _existing(session: Session, job: Job) -> Comparison | None:
    known = job.params.get("comparison_id")
    comparison = session.get(Comparison, known) if known else None
    return comparison if comparison is not None and comparison.app_id == job.app_id else None


def compare_with_base(
    *, session: Session, job_id: int, actor: str, concurrency: int | None = None
) -> tuple[Comparison, list[int]]:
    """The comparison of job ``job_id``'s model with its base, made the first time; returns
    it and the runs still to generate (start them as jobs, as for any comparison)."""
    require_member_role("compare models")
    view = get_job(job_id=job_id)  # checks the caller may see the job's app
    if view.state != "succeeded" or not view.model:
        raise ConfigError(
            f"Fine-tuning job {job_id} has no model to compare yet ({view.state}).",
            hint="Wait until it has succeeded, or start a new job.",
        )
    # Take the job's write lock first (a no-op update: a row lock on PostgreSQL, the
    # database's write lock on SQLite) and hold it until the comparison and the job's note
    # of it are committed together: two clicks at once give one comparison, not two.
    session.execute(update(Job).where(col(Job.id) == job_id).values(id=job_id))
    # read after the lock, as the lock's holder before us may have left it
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None and job.kind == KIND and job.app_id is not None
    found = _existing(session, job)
    if found is not None:
        session.rollback()  # let go of the lock
        return found, []
    prompt_column = view.columns.get("prompt")
    completion_column = view.columns.get("completion")
    if not prompt_column or not completion_column:
        raise ConfigError(
            f"Job {job_id} learned from a chat column, which a comparison cannot replay yet.",
            hint="Compare the models on the Compare page with a prompt of your own.",
        )
    _, validation = load_split(job.params)
    if not validation:
        raise ConfigError(
            f"Job {job_id} kept no validation rows (its validation share was 0).",
            hint="Compare the models on the Compare page, on a dataset of new questions.",
        )
    source = get_version(session=session, version_id=view.dataset_version_id)
    dataset = session.get(Dataset, source.dataset_id)
    dataset_name = dataset.name if dataset is not None else "dataset"
    rows = [example.row - 1 for example in validation]
    subset = subset_version(
        session=session, version_id=view.dataset_version_id, rows=rows,
        name=f"{dataset_name} · validation of fine-tune #{job_id}",
        expected_column=completion_column,
        note=f"the {len(rows)} validation rows of fine-tuning job {job_id}",
    )  # fmt: skip
    assert subset.id is not None
    prompt = PromptTemplate.chat([{"role": "user", "content": "{{ " + prompt_column + " }}"}])
    parameters = {"temperature": 0, "max_tokens": _max_tokens([e.completion for e in validation])}
    contenders = [
        ContenderSpec(model=model, parameters=parameters, prompt=prompt, label=label[:120])
        for model, label in (
            (view.base_model, f"base: {view.base_model}"),
            (view.model, f"fine-tuned: {view.model}"),
        )
    ]
    comparison, missing = create_comparison(
        session=session, app_id=job.app_id, dataset_version_id=subset.id,
        contenders=contenders, evaluators=EVALUATORS, baseline=0, concurrency=concurrency,
        name=f"Fine-tune #{job_id}: {view.model} vs {view.base_model}", actor=actor,
        commit=False,
    )  # fmt: skip
    job.params = {**job.params, "comparison_id": comparison.id}  # reloaded after the commit
    session.add(job)
    session.commit()
    return comparison, missing
