"""The app's quality over time: the overall pass rate of each finished evaluation."""

from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st

from studio.store.tables import Evaluation

__all__ = ["trend"]


def trend(evaluations: list[Evaluation]) -> None:
    """A line of overall pass rates, oldest first, one point per finished evaluation."""
    points = [
        e
        for e in sorted(evaluations, key=lambda e: e.created_at)
        if (e.summary or {}).get("overall_pass_rate") is not None
    ]
    unscored = [
        e
        for e in evaluations
        if e.status == "done" and (e.summary or {}).get("overall_pass_rate") is None
    ]
    if not points:
        if unscored:
            st.info(
                f"No point to draw yet: {_named(unscored)} finished without a pass rate: none of "
                "its outputs could be judged (usually because every score was an evaluator "
                "error). Open its report above to see why, fix the evaluator (its model or "
                "options) and evaluate again."
            )
            return
        st.info(
            "No finished evaluation yet. Each evaluation you run adds a point here, so you can "
            "see whether new variant versions get better."
        )
        return
    hover = [
        f"{e.name}<br>evaluation {e.id}<br>"
        + "<br>".join(
            f"{c['label']}: {c['pass_rate']['estimate']:.0%}"
            for c in (e.summary.get("contenders") or {}).values()
            if c.get("pass_rate")
        )
        for e in points
    ]
    figure = go.Figure(
        go.Scatter(
            x=[e.created_at for e in points],
            y=[e.summary["overall_pass_rate"] for e in points],
            mode="lines+markers",
            text=hover,
            hovertemplate="%{text}<br>overall %{y:.0%}<extra></extra>",
            name="overall pass rate",
        )
    )
    figure.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
        yaxis={"title": "overall pass rate", "tickformat": ".0%", "range": [0, 1.05]},
        xaxis={"title": "when the evaluation was started (UTC)"},
    )
    if len(points) == 1:  # one point: a day either side, not a millisecond axis
        moment = points[0].created_at
        figure.update_xaxes(range=[moment - timedelta(days=1), moment + timedelta(days=1)])
    st.plotly_chart(figure, key="ev_trend", width="stretch")
    more = "" if len(points) > 1 else " Run another evaluation to see a trend."
    st.caption(
        "Each point is one finished evaluation: the share of outputs that passed every one of "
        "its evaluators, across its contenders. Points are comparable when they use the same "
        f"dataset and evaluators; hover a point to see each contender.{more}"
    )
    if unscored:
        st.caption(
            f"Not drawn: {_named(unscored)}, with no pass rate (none of its outputs could be "
            "judged)."
        )


def _named(evaluations: list[Evaluation]) -> str:
    """One evaluation by id and name, or several by id ("evaluations 4 and 7"), in a sentence."""
    ids = sorted(int(e.id or 0) for e in evaluations)
    if len(ids) == 1:
        return f"evaluation {ids[0]} ({evaluations[0].name})"
    shown = ", ".join(str(i) for i in ids[:-1]) + f" and {ids[-1]}"
    return f"evaluations {shown}"
