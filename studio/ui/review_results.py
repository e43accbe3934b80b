"""Review page, "Results": hit rates or win rates with intervals, how well the raters
agree, the items they disagree on (settle them here), a judge against the people, the
CSV downloads and an import of ratings collected elsewhere."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from studio.services.evaluations import list_evaluations
from studio.services.review_export import export_ratings, export_summary, import_ratings
from studio.services.review_results import (
    disagreements,
    judge_vs_people,
    review_results,
    settle,
)
from studio.services.reviews import RATINGS, progress
from studio.store.tables import HumanReview
from studio.ui.common import csv_buttons, show_error, studio_session

__all__ = ["results_panel"]


def _percent(figure: dict[str, float] | None) -> str:
    return f"{figure['estimate']:.0%}" if figure else "-"


def _interval(figure: dict[str, float] | None, fmt: str = "{:.0%}") -> str:
    if not figure:
        return "-"
    return f"{fmt.format(figure['low'])} to {fmt.format(figure['high'])}"


def _figures(results: dict[str, Any]) -> None:
    rows = []
    for c in results["contenders"]:
        if results["kind"] == "binary":
            rows.append({"Contender": c["label"], "Items with a verdict": c["decided"],
                         "Good": c["good"], "Hit rate": _percent(c["hit_rate"]),
                         "95% interval": _interval(c["hit_rate"])})  # fmt: skip
        elif results["kind"] == "scale":
            mean = c["mean"]
            rows.append({"Contender": c["label"], "Items rated": c["rated"],
                         "Mean (1-5)": f"{mean['estimate']:.2f}" if mean else "-",
                         "95% interval": _interval(mean, "{:.2f}")})  # fmt: skip
        else:
            rows.append({"Contender": c["label"], "Decided items": c["judged"], "Wins": c["wins"],
                         "Win rate": _percent(c["win_rate"]),
                         "95% interval": _interval(c["win_rate"])})  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for c in results["contenders"]:
        st.markdown(f"- {c['sentence']}")
    if results.get("ties"):
        st.caption(f"{results['ties']} item(s) ended in a tie; win rates leave them out.")
    if results.get("ranking"):
        st.markdown(
            "**Ranking** (Bradley-Terry strength from every decided pair; higher is better): "
            + ", ".join(f"{r['label']} ({r['strength']:.2f})" for r in results["ranking"])
        )


def _disagreements(review: HumanReview) -> None:
    with studio_session() as session:
        items = disagreements(session=session, review_id=int(review.id or 0))
    st.subheader(f"Items the raters disagree on ({len(items)})")
    if not items:
        st.caption("None so far: every item with two or more ratings got the same answer.")
        return
    st.caption("Settle an item with the final verdict; the figures above then use it.")
    for d in items[:50]:
        settled = f" · settled: **{d['settled']}** by {d['settled_by']}" if d["settled"] else ""
        with st.expander(f"Item {d['position'] + 1} (row {d['row_index']}){settled}"):
            st.table({"Rater": list(d["ratings"]), "Rating": list(d["ratings"].values())})
            for output in d["outputs"]:
                st.markdown(f"**{output['label']}**")
                st.text(output["output"])
            left, right = st.columns([2, 1])
            verdict = left.selectbox(
                "Final verdict", RATINGS[review.kind], key=f"review_settle_{d['item_id']}"
            )
            if right.button("Settle", key=f"review_settle_go_{d['item_id']}"):
                try:
                    with studio_session() as session:
                        settle(session=session, review_id=int(review.id or 0),
                               item_id=d["item_id"], verdict=verdict)  # fmt: skip
                    st.rerun()
                except Exception as exc:
                    show_error(exc)


def _judge(review: HumanReview) -> None:
    st.subheader("Can a judge replace a reviewer?")
    with studio_session() as session:
        evaluations = [
            e for e in list_evaluations(session=session, app_id=review.app_id)
            if any(c.get("run_id") in {k.get("run_id") for k in review.contenders}
                   for c in e.contenders)
        ]  # fmt: skip
    if not evaluations:
        st.caption(
            "Run an evaluation with an LLM judge on the same run (Evaluations page); its "
            "verdicts are then measured against these ratings here."
        )
        return
    by_id = {int(e.id or 0): e for e in evaluations}
    left, right = st.columns(2)
    eval_id = left.selectbox(
        "Evaluation", list(by_id), format_func=lambda i: f"{by_id[i].name} (#{i})",
        key="review_judge_eval",
    )  # fmt: skip
    keys = [e["key"] for e in by_id[eval_id].evaluators]
    key = right.selectbox("Evaluator", keys, key="review_judge_key")
    try:
        with studio_session() as session:
            found = judge_vs_people(
                session=session, review_id=int(review.id or 0), evaluation_id=eval_id,
                evaluator_key=key,
            )  # fmt: skip
    except Exception as exc:
        show_error(exc)
        return
    st.markdown(found["sentence"])
    if found["labels"]:
        st.caption("Rows: the people's verdict; columns: the judge's.")
        st.dataframe(
            pd.DataFrame(found["confusion"], index=found["labels"], columns=found["labels"])
        )
    if found["disagreements"]:
        st.markdown(f"**Where the judge and the people differ** ({len(found['disagreements'])})")
        st.dataframe(
            pd.DataFrame(
                [{"Row": d["row_index"], "Judge": d["judge"], "People": ", ".join(d["people"])}
                 for d in found["disagreements"]]
            ),
            hide_index=True,
        )  # fmt: skip


def results_panel(review: HumanReview) -> None:
    """Everything the review found, for the app's people."""
    review_id = int(review.id or 0)
    try:
        with studio_session() as session:
            done = progress(session=session, review_id=review_id)
            results = review_results(session=session, review_id=review_id)
    except Exception as exc:
        show_error(exc)
        return
    st.progress(done["share"], text=done["sentence"])
    if not results["rated_items"]:
        st.info("No ratings yet. Raters open this page's 'To review' tab to start.")
    _figures(results)
    st.subheader("Do the raters agree?")
    st.markdown(results["agreement"]["sentence"])
    _disagreements(review)
    if review.kind == "binary":
        _judge(review)
    st.subheader("Download and import")
    csv_buttons(
        [
            ("Every rating (CSV)", lambda: _export(export_ratings, review_id),
             f"review-{review_id}-ratings.csv", "review_dl_ratings"),
            ("Summary (CSV)", lambda: _export(export_summary, review_id),
             f"review-{review_id}-summary.csv", "review_dl_summary"),
        ]
    )  # fmt: skip
    upload = st.file_uploader(
        "Import ratings collected elsewhere (CSV with columns item, rater, rating, comment)",
        type=["csv"], key=f"review_import_{review_id}",
    )  # fmt: skip
    if upload is not None and st.button("Import", key=f"review_import_go_{review_id}"):
        try:
            with studio_session() as session:
                saved = import_ratings(session=session, review_id=review_id, data=upload.getvalue())
            st.success(f"Imported {saved} rating(s).")
        except Exception as exc:
            show_error(exc)


def _export(build: Any, review_id: int) -> bytes:
    with studio_session() as session:
        data: bytes = build(session=session, review_id=review_id)
    return data
