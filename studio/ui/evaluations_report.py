"""The report card: summary table, pass-rate chart, outputs with filters, row detail,
classification figures and the several-samples figures."""

from __future__ import annotations

from typing import Literal

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from studio.evaluators.stats import Interval, interval_sentence
from studio.services.evaluation_export import export_evaluation
from studio.ui.common import csv_buttons, studio_session
from studio.ui.evaluations_tables import (
    ERROR,
    FAIL,
    OVERALL,
    PASS,
    Line,
    Output,
    ReportView,
)

__all__ = ["downloads", "report_card"]

# Symbols every font has (emoji need an emoji font, which a server's browser may lack).
BADGE = {PASS: "✓ pass", FAIL: "✗ fail", ERROR: "⚠ error", "not scored": "… not scored"}
SHOWN_ROWS = 500


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _summary_frame(view: ReportView) -> pd.DataFrame:
    records = []
    for line in view.lines:
        records.append(
            {
                "Contender": view.label(line.contender),
                "Evaluator": view.evaluator_name(line.evaluator),
                "Judged": line.judged,
                "Passed": line.passed,
                "Pass rate": _pct(line.rate),
                "95% CI": "-" if line.low is None else f"{line.low:.0%} to {line.high:.0%}",
                "Mean score": "-" if line.mean is None else f"{line.mean:.2f}",
                "Errors": line.errors,
            }
        )
    return pd.DataFrame(records)


def _chart(view: ReportView) -> go.Figure:
    figure = go.Figure()
    for contender in view.contenders:
        lines = [x for x in view.lines if x.contender == contender and x.rate is not None]
        figure.add_bar(
            name=view.label(contender),
            x=[view.evaluator_name(x.evaluator) for x in lines],
            y=[x.rate for x in lines],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [(x.high or 0) - (x.rate or 0) for x in lines],
                "arrayminus": [(x.rate or 0) - (x.low or 0) for x in lines],
            },
            hovertemplate="%{x}: %{y:.0%}<extra>%{fullData.name}</extra>",
        )
    figure.update_layout(
        barmode="group",
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis={"title": "pass rate", "tickformat": ".0%", "range": [0, 1.05]},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def _summary(view: ReportView) -> None:
    st.dataframe(_summary_frame(view), hide_index=True, width="stretch", key="ev_summary")
    first = next((x for x in view.lines if x.evaluator == OVERALL and x.rate is not None), None)
    example = ""
    if first is not None and first.low is not None and first.high is not None:
        sentence = interval_sentence(Interval(first.rate or 0, first.low, first.high))
        example = f" For {view.label(first.contender)}, overall: {sentence}"
    st.caption(
        "**Pass rate** is the share of judged outputs that passed. The **95% CI** (confidence "
        "interval) is the range the true pass rate most likely lies in, given this many rows: "
        "fewer rows give a wider range, and two contenders whose ranges overlap may not really "
        f"differ.{example} **Mean score** is the average score from 0 (worst) to 1 (best). "
        "**Errors** are outputs an evaluator could not judge (for example a judge model's "
        "unreadable reply): they are left out of the pass rate, not counted as failures. "
        "**Overall** passes an output only when every evaluator passed it."
    )
    st.plotly_chart(_chart(view), key="ev_chart", width="stretch")
    st.caption(
        "Each bar is a pass rate; the whisker is its 95% confidence interval. Where whiskers "
        "overlap, the data cannot yet tell the two apart: add rows to narrow them."
    )
    for line in view.lines:
        if line.errors and line.evaluator != OVERALL:
            st.warning(
                f"⚠ {view.evaluator_name(line.evaluator)} could not judge {line.errors} "
                f"output(s) of {view.label(line.contender)}. These are the evaluator's errors, "
                f"not failed outputs; the first: {line.error_rows[0][2]} Run the evaluation "
                "again (Resume scoring) to retry them."
            )


def _filtered(view: ReportView) -> tuple[list[Output], str | None]:
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    keys = [OVERALL, *view.evaluators]
    evaluator = c1.selectbox(
        "Evaluator",
        keys,
        key="ev_filter_evaluator",
        format_func=lambda k: "Every evaluator" if k == OVERALL else view.evaluator_name(k),
    )
    failed_only = c2.checkbox(
        "Failed rows only", key="ev_filter_failed", help="Only outputs that failed the evaluator."
    )
    search = c3.text_input(
        "Search", key="ev_filter_search", placeholder="a word in the inputs, output or reasons"
    )
    chosen = None if evaluator == OVERALL else str(evaluator)
    shown = []
    for output in view.outputs:
        verdict = output.overall
        if chosen is not None:
            verdict = next((v.verdict for v in output.verdicts if v.evaluator == chosen), "")
        if failed_only and verdict != FAIL:
            continue
        if search.strip() and search.strip().casefold() not in output.text():
            continue
        shown.append(output)
    return shown, chosen


def _outputs_frame(view: ReportView, outputs: list[Output], chosen: str | None) -> pd.DataFrame:
    records = []
    several = len(view.contenders) > 1
    for o in outputs:
        record: dict[str, object] = {"Row": o.row}
        if several:
            record["Contender"] = view.label(o.contender)
        if view.samples > 1:
            record["Sample"] = o.sample + 1
        record["Overall"] = BADGE.get(o.overall, o.overall)
        for v in o.verdicts:
            record[view.evaluator_name(v.evaluator)] = BADGE.get(v.verdict, v.verdict)
        if chosen is not None:
            picked = next(v for v in o.verdicts if v.evaluator == chosen)
            record["Reason"] = picked.reason
        record["Output"] = o.output if not o.generation_error else f"(no output) {o.output}"
        if view.expected_column:
            record["Expected"] = o.reference or ""
        for column in view.columns:
            if column != view.expected_column:
                record[column] = o.inputs.get(column, "")
        records.append(record)
    return pd.DataFrame(records)


def _detail(view: ReportView, outputs: list[Output]) -> None:
    def label(i: int) -> str:
        o = outputs[i]
        who = f" · {view.label(o.contender)}" if len(view.contenders) > 1 else ""
        sample = f" · sample {o.sample + 1}" if view.samples > 1 else ""
        return f"Row {o.row}{who}{sample} · {BADGE.get(o.overall, o.overall)}"

    if st.session_state.get("ev_detail") not in range(len(outputs)):
        st.session_state.ev_detail = 0
    index = st.selectbox("Look at one output", range(len(outputs)), key="ev_detail",
                         format_func=label)  # fmt: skip
    o = outputs[int(index)]
    with st.container(border=True):
        left, right = st.columns(2, gap="medium")
        with left:
            st.markdown("**Prompt sent to the model**")
            st.code(o.prompt or "(not recorded)", language=None, wrap_lines=True)
            st.markdown("**Reference (expected output)**")
            if o.reference:
                st.code(o.reference, language=None, wrap_lines=True)
            else:
                st.caption("None: this dataset version has no expected-output column.")
            if o.chunks is not None:
                _chunks(o)
        with right:
            st.markdown("**Output**")
            if o.generation_error:
                st.error(f"The model gave no output: {o.generation_error}")
            else:
                st.code(o.output or "(empty)", language=None, wrap_lines=True)
            st.markdown("**Verdicts**")
            for v in o.verdicts:
                name = view.evaluator_name(v.evaluator)
                score = "" if v.score is None else f" (score {v.score:.2f})"
                if v.verdict == PASS:
                    st.success(f"{name}: pass{score}. {v.reason}")
                elif v.verdict == FAIL:
                    st.error(f"{name}: fail{score}. {v.reason}")
                elif v.verdict == ERROR:
                    st.warning(f"⚠ {name} could not judge this output: {v.reason}")
                else:
                    st.info(f"{name}: not scored yet.")


def _chunks(o: Output) -> None:
    st.markdown("**Chunks retrieved**")
    if not o.chunks:
        st.caption(f"The retrieval step found no chunks for '{o.query or ''}'.")
        return
    st.dataframe(
        pd.DataFrame(o.chunks),
        hide_index=True,
        width="stretch",
        key="ev_detail_chunks",
        column_config={
            "Score": st.column_config.NumberColumn(format="%.3f"),
            "Text": st.column_config.TextColumn(width="large"),
        },
    )
    st.caption(
        f"What the retrieval step found for '{o.query or ''}', best first: the RAG evaluators "
        "judged these. Score: how close the chunk is to the query (higher is closer)."
    )


RETRIEVAL_MEANING = {
    "hit rate": "the share of rows where at least one retrieved chunk came from an expected "
    "document",
    "mean recall@k": "the average share of each row's expected documents found in the first "
    "{k} chunks",
    "MRR": "the mean reciprocal rank: 1 when the first relevant chunk always came first, 0.5 "
    "when it came second on average, 0 when none came back",
}


def _retrieval(view: ReportView) -> None:
    lines = [x for x in view.lines if x.extra.get("retrieval")]
    if not lines:
        return
    st.markdown("#### Retrieval")
    records, sentences = [], []
    for line in lines:
        figure = line.extra["retrieval"]
        name = str(figure["figure"])
        k = figure.get("k")
        shown = name.replace("@k", f"@{k}") if k else name
        as_pct = name != "MRR"
        value = f"{figure['estimate']:.0%}" if as_pct else f"{figure['estimate']:.2f}"
        low = f"{figure['low']:.0%}" if as_pct else f"{figure['low']:.2f}"
        high = f"{figure['high']:.0%}" if as_pct else f"{figure['high']:.2f}"
        records.append(
            {
                "Contender": view.label(line.contender),
                "Measure": shown[:1].upper() + shown[1:],
                "Value": value,
                "95% CI": f"{low} to {high}",
                "Rows": figure["rows"],
                "Not judged": line.errors,
            }
        )
        meaning = RETRIEVAL_MEANING.get(name, "").replace("{k}", str(k or ""))
        sentences.append(
            f"**{view.label(line.contender)}, {shown}** {value} (95% CI {low} to {high}): "
            f"{meaning}, over {figure['rows']} row(s)."
        )
    st.dataframe(pd.DataFrame(records), hide_index=True, width="stretch", key="ev_retrieval")
    st.caption(
        " ".join(sentences)
        + " The 95% CI is the range the true figure most likely lies in with this many rows. "
        "**Not judged** counts rows without retrieval data or without an expected document."
    )


def _outputs(view: ReportView) -> None:
    st.markdown("#### Every output")
    outputs, chosen = _filtered(view)
    total = len(view.outputs)
    if not outputs:
        st.info("No output matches these filters. Untick 'Failed rows only' or clear the search.")
        return
    st.dataframe(
        _outputs_frame(view, outputs[:SHOWN_ROWS], chosen),
        hide_index=True,
        width="stretch",
        key="ev_outputs",
        column_config={
            "Output": st.column_config.TextColumn(width="medium"),
            "Reason": st.column_config.TextColumn(width="medium"),
        },
    )
    more = (
        f" (the first {SHOWN_ROWS} are drawn; the CSV holds all)"
        if len(outputs) > SHOWN_ROWS
        else ""
    )
    st.caption(
        f"{len(outputs)} of {total} outputs shown{more}. ✓ passed, ✗ failed (the output is "
        "wrong), ⚠ the evaluator could not judge it (not the output's fault). Overall fails "
        "an output as soon as one evaluator fails it."
    )
    _detail(view, outputs[:SHOWN_ROWS])


def _classification(view: ReportView, line: Line) -> None:
    extra = line.extra
    name = view.evaluator_name(line.evaluator)
    title = "Classification" if name == "Classification" else f"Classification ({name})"
    st.markdown(f"#### {title} · {view.label(line.contender)}")
    st.metric("Accuracy", f"{extra['accuracy']:.0%}")
    st.caption("The share of outputs whose label equals the expected label.")
    left, right = st.columns(2, gap="medium")
    with left:
        per_label = pd.DataFrame(extra.get("per_label", []))
        if not per_label.empty:
            st.dataframe(
                per_label.rename(columns=str.capitalize).round(2),
                hide_index=True,
                width="stretch",
                key=f"ev_labels_{line.contender}_{line.evaluator}",
            )
        st.caption(
            "**Precision**: of the outputs given this label, the share that should have it. "
            "**Recall**: of the rows that should have this label, the share that got it. **F1** "
            "balances the two (1 is perfect). **Support**: rows that should have the label."
        )
    with right:
        confusion = extra.get("confusion") or {}
        labels = confusion.get("labels", [])
        if labels:
            matrix = pd.DataFrame(
                confusion["matrix"],
                index=[f"expected {x}" for x in labels],
                columns=[f"got {x}" for x in labels],
            )
            st.dataframe(
                matrix, width="stretch", key=f"ev_confusion_{line.contender}_{line.evaluator}"
            )
        st.caption(
            "Confusion matrix: each cell counts rows with the expected label on the left that "
            "got the label on top; the diagonal holds the correct ones."
        )


def _several_samples(view: ReportView) -> None:
    lines = [x for x in view.lines if x.pass_at_k]
    if not lines:
        return
    st.markdown("#### Several samples per row")
    records = []
    for line in lines:
        record: dict[str, object] = {
            "Contender": view.label(line.contender),
            "Evaluator": view.evaluator_name(line.evaluator),
        }
        for k, value in sorted(line.pass_at_k.items()):
            record[f"pass@{k}"] = f"{value:.0%}"
        for k, value in sorted(line.pass_hat_k.items()):
            record[f"pass^{k}"] = f"{value:.0%}"
        record["Flaky rows"] = ", ".join(str(r) for r in line.flaky) or "none"
        records.append(record)
    st.dataframe(pd.DataFrame(records), hide_index=True, width="stretch", key="ev_samples")
    st.caption(
        "**pass@k**: the chance that at least one of k samples of a row passes. **pass^k**: the "
        "chance that all k pass (how reliably the prompt works). **Flaky rows** got both passing "
        "and failing samples: the model's answer to them is unstable."
    )


def export_csv(evaluation_id: int, shape: Literal["wide", "long"]) -> bytes:
    """The same bytes as ``studio eval export``; built only when a button is clicked."""
    with studio_session() as session:
        return export_evaluation(session=session, evaluation_id=evaluation_id, shape=shape)


def downloads(evaluation_id: int) -> None:
    csv_buttons(
        [
            (
                "Download results (wide CSV)",
                lambda: export_csv(evaluation_id, "wide"),
                f"evaluation-{evaluation_id}-wide.csv",
                "ev_download_wide",
            ),
            (
                "Download results (long CSV)",
                lambda: export_csv(evaluation_id, "long"),
                f"evaluation-{evaluation_id}-long.csv",
                "ev_download_long",
            ),
        ]
    )
    st.caption(
        "**Wide**: one line per dataset row, with its inputs, the expected output, and per "
        "contender the output and every evaluator's score, pass and reason: open it in a "
        "spreadsheet. **Long**: one line per row, contender, evaluator and sample, with the "
        "run, model, latency, tokens and cost: for pivot tables and scripts."
    )


def report_card(view: ReportView) -> None:
    """Everything a product manager reads about one finished evaluation."""
    if not view.lines:
        st.info(
            "Nothing was scored in this evaluation: its runs have no outputs. Generate the "
            "runs' rows in the Playground, then start a new evaluation."
        )
        return
    _summary(view)
    for line in view.lines:
        if line.extra.get("accuracy") is not None:
            _classification(view, line)
    _retrieval(view)
    _several_samples(view)
    _outputs(view)
