"""``studio review``: human reviews from the command line.

    studio review create --app APP --source run:3 --name "Tone" --task "..." \\
                         [--good "..."] [--bad "..."] [--kind binary|scale|pairwise]
                         [--raters 2] [--assign all|named|split --people ann,ben]
                         [--sample 50 --seed 7] [--order random|source] [--contenders A,B]
    studio review list [--app APP]
    studio review status ID
    studio review export ID --out ratings.csv [--summary summary.csv]
    studio review import ID ratings.csv
    studio review judge ID --evaluation EVAL_ID --evaluator KEY

``--source`` is ``run:ID``, ``evaluation:ID``, ``comparison:ID`` or ``endpoint:NAME``
(the endpoint's last ``--sample`` requests, 50 by default). People rate in the studio's
Review page; ratings collected elsewhere come in with ``import``. The CLI acts as the
local operator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from studio.cli.output import JsonOpt, print_json, table
from studio.core.errors import ConfigError
from studio.store import session_scope

__all__ = ["register_review_commands"]

review_app = typer.Typer(
    help="Human reviews: criteria, raters, agreement, CSV export and import.",
    no_args_is_help=True,
)


def register_review_commands(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")


def _source(session: Any, app_id: int, text: str) -> tuple[str, int]:
    kind, _, ref = text.partition(":")
    kind = kind.strip().lower()
    if kind not in ("run", "evaluation", "comparison", "endpoint") or not ref.strip():
        raise ConfigError(
            f"--source {text!r} is not run:ID, evaluation:ID, comparison:ID or endpoint:NAME."
        )
    if kind == "endpoint" and not ref.strip().isdigit():
        from sqlmodel import select

        from studio.store.tables import Endpoint

        found = session.exec(
            select(Endpoint).where(Endpoint.name == ref.strip(), Endpoint.app_id == app_id)
        ).first()
        if found is None:
            raise ConfigError(f"No endpoint {ref.strip()!r} in this app.")
        return kind, int(found.id)
    if not ref.strip().isdigit():
        raise ConfigError(f"--source {text!r}: the {kind} is named by its id (a number).")
    return kind, int(ref)


def _names(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


@review_app.command("create")
def review_create(
    app: Annotated[str, typer.Option("--app", help="App name or id.")],
    source: Annotated[
        str, typer.Option(help="run:ID, evaluation:ID, comparison:ID, endpoint:NAME")
    ],
    name: Annotated[str, typer.Option(help="What the review is called.")],
    task: Annotated[str, typer.Option(help="What the model was asked to do.")],
    good: Annotated[str, typer.Option(help="What a good output is.")] = "",
    bad: Annotated[str, typer.Option(help="What a bad output is.")] = "",
    examples: Annotated[str, typer.Option(help="Examples for the raters.")] = "",
    kind: Annotated[
        str, typer.Option(help="binary (good/bad), scale (1-5) or pairwise (A/B)")
    ] = "binary",
    raters: Annotated[int, typer.Option(min=1, max=5, help="Ratings each item needs.")] = 1,
    assign: Annotated[str, typer.Option(help="all, named or split.")] = "all",
    people: Annotated[str | None, typer.Option(help="User names, comma-separated.")] = None,
    order: Annotated[str, typer.Option(help="random or source.")] = "random",
    sample: Annotated[int | None, typer.Option(min=1, help="Review a random N rows.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample and the order.")] = 0,
    contenders: Annotated[str | None, typer.Option(help="Contender keys, e.g. A,B.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a human review; its items are ready for the raters at once."""
    from pydantic import ValidationError

    from studio.services.apps import get_app
    from studio.services.review_setup import ReviewSpec, create_review
    from studio.services.reviews import progress

    with session_scope() as session:
        found = get_app(session=session, ref=app)
        assert found.id is not None
        source_kind, source_id = _source(session, found.id, source)
        try:
            spec = ReviewSpec(
                name=name, kind=kind, task=task, good=good, bad=bad, examples=examples,
                source_kind=source_kind, source_id=source_id, raters_per_item=raters,
                assignment=assign, assignees=_names(people), item_order=order,
                sample_size=sample, seed=seed, contenders=_names(contenders) or None,
            )  # fmt: skip
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise ConfigError(f"{where}: {problem['msg']}") from None
        review = create_review(session=session, app_id=found.id, spec=spec)
        done = progress(session=session, review_id=review.id or 0)
    if as_json:
        print_json({"id": review.id, "name": review.name, "items": done["items"],
                    "needed": done["needed"]})  # fmt: skip
        return
    typer.echo(
        f"Created review {review.id} '{review.name}': {done['items']} items, "
        f"{done['needed']} ratings needed. Raters open it on the studio's Review page."
    )


@review_app.command("list")
def review_list(
    app: Annotated[str | None, typer.Option("--app", help="Only this app's reviews.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The reviews, newest first, with their progress."""
    from studio.services.apps import get_app
    from studio.services.reviews import list_reviews, progress

    with session_scope() as session:
        app_id = get_app(session=session, ref=app).id if app else None
        rows = [
            (r, progress(session=session, review_id=r.id or 0))
            for r in list_reviews(session=session, app_id=app_id)
        ]
    if as_json:
        print_json(
            [{"id": r.id, "name": r.name, "kind": r.kind, "app_id": r.app_id,
              "items": p["items"], "given": p["given"], "needed": p["needed"]} for r, p in rows]
        )  # fmt: skip
        return
    if not rows:
        typer.echo("No reviews yet. Create one: studio review create --app APP --source run:ID ...")
        return
    table(
        "Reviews",
        ["id", "name", "kind", "items", "ratings given", "created"],
        [[r.id, r.name, r.kind, p["items"], f"{p['given']} of {p['needed']}",
          f"{r.created_at:%Y-%m-%d %H:%M}"] for r, p in rows],
    )  # fmt: skip


@review_app.command("status")
def review_status(review_id: int, as_json: JsonOpt = False) -> None:
    """Progress, the figures per contender and the raters' agreement, in sentences."""
    from studio.services.review_results import review_results
    from studio.services.reviews import progress

    with session_scope() as session:
        done = progress(session=session, review_id=review_id)
        results = review_results(session=session, review_id=review_id)
    if as_json:
        print_json({"progress": done, "results": results})
        return
    typer.echo(done["sentence"])
    for contender in results["contenders"]:
        typer.echo(contender["sentence"])
    typer.echo(results["agreement"]["sentence"])
    if results["disagreements"]:
        typer.echo(
            f"{results['disagreements']} item(s) have raters who disagree; settle them on the "
            "review's results page."
        )


@review_app.command("export")
def review_export(
    review_id: int,
    out: Annotated[Path, typer.Option("--out", help="CSV file for every rating.")],
    summary: Annotated[Path | None, typer.Option(help="CSV file for the summary.")] = None,
) -> None:
    """Write every rating (and optionally the summary) as CSV."""
    from studio.services.review_export import export_ratings, export_summary

    with session_scope() as session:
        data = export_ratings(session=session, review_id=review_id)
        summary_data = export_summary(session=session, review_id=review_id) if summary else b""
    out.write_bytes(data)
    lines = max(data.count(b"\n") - 1, 0)
    typer.echo(f"Wrote {lines} rating(s) to {out}.")
    if summary:
        summary.write_bytes(summary_data)
        typer.echo(f"Wrote the summary to {summary}.")


@review_app.command("import")
def review_import(review_id: int, file: Path) -> None:
    """Import ratings from a CSV (columns item, rater, rating, comment)."""
    from studio.services.review_export import import_ratings

    if not file.is_file():
        raise ConfigError(f"There is no file {file}.")
    with session_scope() as session:
        saved = import_ratings(session=session, review_id=review_id, data=file.read_bytes())
    typer.echo(f"Imported {saved} rating(s) into review {review_id}.")


@review_app.command("judge")
def review_judge(
    review_id: int,
    evaluation: Annotated[int, typer.Option(help="The evaluation holding the judge's scores.")],
    evaluator: Annotated[str, typer.Option(help="The judge's key in that evaluation.")],
    as_json: JsonOpt = False,
) -> None:
    """How often an evaluation's judge agrees with the people of a good/bad review."""
    from studio.services.review_results import judge_vs_people

    with session_scope() as session:
        found = judge_vs_people(
            session=session, review_id=review_id, evaluation_id=evaluation,
            evaluator_key=evaluator,
        )  # fmt: skip
    if as_json:
        print_json(found)
        return
    typer.echo(found["sentence"])
    if found["labels"]:
        table(
            "People (rows) against the judge (columns)",
            ["people \\ judge", *found["labels"]],
            [[label, *row] for label, row in zip(found["labels"], found["confusion"], strict=True)],
        )
