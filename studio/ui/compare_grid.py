"""The side-by-side grid: inputs first, then one column per contender; paged and filtered.

Each cell shows the output (shortened; the row detail has it in full), a ✓/✗ badge
when the evaluation judged it, and its latency, tokens and cost in small type. Under
each row, one button per contender ("B is better") and Tie store a preference. In
blind mode the names, badges and figures are hidden and the outputs are shown as
"Output 1, 2, 3" in an order shuffled per row (the same order each time you open it).
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st
from sqlmodel import col, select

from studio.services.comparison_preferences import TIE, blind_order, set_preference
from studio.services.comparison_summary import GridPage, grid_page
from studio.store.tables import Comparison, ComparisonPreference
from studio.ui.common import studio_session
from studio.ui.compare_detail import row_detail

__all__ = ["RATER", "grid_panel"]

RATER = "you"  # anonymous until accounts exist
SHORT = 400  # characters of an output shown in a cell; the row detail shows all
PAGE_SIZES = [25, 50]


def _md(text: str) -> str:
    """Text shown as Markdown literally (CSV values and labels are not Markdown)."""
    special = "\\`*_{}[]()#+-.!|<>~$"
    return "".join(f"\\{c}" if c in special else c for c in text).replace("\n", " ")


def _choices(comparison_id: int, rows: list[int]) -> dict[int, str]:
    """This person's preference per row of the page."""
    with studio_session() as session:
        found = session.exec(
            select(ComparisonPreference).where(
                ComparisonPreference.comparison_id == comparison_id,
                ComparisonPreference.rater == RATER,
                col(ComparisonPreference.row_index).in_(rows),
            )
        ).all()
    return {p.row_index: p.winner for p in found}


def _prefer(comparison_id: int, row: int, winner: str, shown: list[str], blind: bool) -> None:
    try:
        with studio_session() as session:
            set_preference(
                session=session,
                comparison_id=comparison_id,
                row_index=row,
                winner=winner,
                shown=shown,
                blind=blind,
                rater=RATER,
            )
    except Exception as exc:
        st.session_state.cmp_flash_error = exc


def _figures(cell: dict[str, Any]) -> str:
    parts = []
    if cell["latency_ms"] is not None:
        parts.append(f"{cell['latency_ms']:,.0f} ms")
    if cell["tokens"]:
        parts.append(f"{cell['tokens']} tokens")
    if cell["cost"] is not None:
        parts.append("free" if cell["cost"] == 0 else f"${cell['cost']:.5f}")
    return " · ".join(parts)


def _cell(cell: dict[str, Any], title: str, blind: bool) -> None:
    st.markdown(f"**{_md(title)}**")
    if not blind and cell["passed"] is not None:
        if cell["passed"]:
            st.badge("pass", icon=":material/check:", color="green")
        else:
            st.badge("fail", icon=":material/close:", color="red")
    if cell["output"] is not None:
        text = cell["output"]
        st.text(text if len(text) <= SHORT else text[:SHORT] + " …")
    elif cell["error"]:
        st.caption(f"No answer: {_md(str(cell['error']))}")
    else:
        st.caption("Not answered yet.")
    if not blind and (figures := _figures(cell)):
        st.caption(figures)


def _titles(comparison: Comparison, order: list[str], blind: bool) -> dict[str, str]:
    if blind:
        return {k: f"Output {i + 1}" for i, k in enumerate(order)}
    labels = {c["key"]: c["label"] for c in comparison.contenders}
    return {k: f"{k} · {labels[k]}" for k in order}


def _row(comparison: Comparison, row: dict[str, Any], choice: str | None, blind: bool) -> None:
    assert comparison.id is not None
    keys = [c["key"] for c in comparison.contenders]
    order = (
        blind_order(comparison_id=comparison.id, row_index=row["row"], keys=keys, rater=RATER)
        if blind
        else keys
    )
    titles = _titles(comparison, order, blind)
    with st.container(border=True):
        inputs = " · ".join(f"**{_md(str(k))}**: {_md(str(v))}" for k, v in row["inputs"].items())
        st.markdown(f"Row {row['row'] + 1} · {inputs}")
        for column, key in zip(st.columns(len(order)), order, strict=True):
            with column:
                _cell(row["cells"][key], titles[key], blind)
        buttons = st.columns(len(order) + 2)
        for button, key in zip(buttons, order, strict=False):
            short = titles[key] if blind else key
            button.button(
                f"{short} is better",
                key=f"cmp_pref_{comparison.id}_{row['row']}_{key}",
                type="primary" if choice == key else "secondary",
                on_click=_prefer,
                args=(comparison.id, row["row"], key, order, blind),
            )
        buttons[len(order)].button(
            "Tie",
            key=f"cmp_pref_{comparison.id}_{row['row']}_tie",
            type="primary" if choice == TIE else "secondary",
            on_click=_prefer,
            args=(comparison.id, row["row"], TIE, order, blind),
        )
        if choice is not None:
            short = titles.get(choice, choice) if blind else choice
            said = "a tie" if choice == TIE else f"{short} is better"
            buttons[len(order) + 1].caption(f"Your choice: {said}")


def _filters(has_verdicts: bool) -> tuple[bool, bool, str]:
    c1, c2, c3, c4 = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
    c1.toggle(
        "Blind mode",
        key="cmp_blind",
        help="Hides the contenders' names, verdicts and figures, and shuffles their order per "
        "row, so your choice of the better output is not swayed by the name.",
    )
    why = None if has_verdicts else "Needs verdicts: choose evaluators for this comparison."
    disagree = c2.checkbox(
        "Rows where contenders disagree",
        key="cmp_disagree",
        disabled=not has_verdicts,
        help=why or "One passes, another fails.",
    )
    fails = c3.checkbox(
        "Rows where the baseline fails",
        key="cmp_baseline_fails",
        disabled=not has_verdicts,
        help=why,
    )
    search = c4.text_input(
        "Search inputs and outputs", key="cmp_search", placeholder="a word or phrase"
    )
    return disagree and has_verdicts, fails and has_verdicts, search


def _page(comparison: Comparison, disagree: bool, fails: bool, search: str) -> tuple[GridPage, int]:
    assert comparison.id is not None
    if "cmp_page_size" not in st.session_state:
        st.session_state.cmp_page_size = PAGE_SIZES[0]
    if "cmp_page" not in st.session_state:
        st.session_state.cmp_page = 1
    size = int(st.session_state.cmp_page_size)
    filters = (comparison.id, disagree, fails, search.strip(), size)
    if st.session_state.get("cmp_page_filters") != filters:  # new filters: back to page 1
        st.session_state.cmp_page_filters = filters
        st.session_state.cmp_page = 1
    offset = (int(st.session_state.cmp_page) - 1) * size
    with studio_session() as session:
        page = grid_page(
            session=session,
            comparison_id=comparison.id,
            offset=offset,
            limit=size,
            disagree=disagree,
            baseline_fails=fails,
            search=search,
        )
    return page, offset


def grid_panel(comparison: Comparison, has_verdicts: bool) -> None:
    """Filters, one page of rows side by side with preference buttons, the row detail."""
    assert comparison.id is not None
    disagree, fails, search = _filters(has_verdicts)
    blind = bool(st.session_state.get("cmp_blind"))
    page, offset = _page(comparison, disagree, fails, search)
    size = int(st.session_state.cmp_page_size)
    pages = max(1, math.ceil(page.total / size))
    if int(st.session_state.cmp_page) > pages:  # fewer rows than before: the last page
        st.session_state.cmp_page = pages
        page, offset = _page(comparison, disagree, fails, search)
    if not page.rows:
        st.info(
            "No rows match these filters. Clear the search or untick a filter to see more rows."
            if (disagree or fails or search.strip())
            else "This comparison has no rows to show yet."
        )
        return
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    c1.caption(
        f"Rows {offset + 1} to {offset + len(page.rows)} of {page.total} matching rows "
        f"(page {st.session_state.cmp_page} of {pages})."
        + (" Blind mode: names are hidden and each row's order is shuffled." if blind else "")
    )
    c2.number_input("Page", 1, pages, key="cmp_page", step=1)
    c3.selectbox("Rows per page", PAGE_SIZES, key="cmp_page_size")
    choices = _choices(comparison.id, [r["row"] for r in page.rows])
    for row in page.rows:
        _row(comparison, row, choices.get(row["row"]), blind)
    st.markdown("#### Row detail")
    by_row = {r["row"]: r for r in page.rows}
    if st.session_state.get("cmp_detail_row") not in by_row:
        st.session_state.cmp_detail_row = page.rows[0]["row"]
    chosen = st.selectbox(
        "Open row", list(by_row), key="cmp_detail_row", format_func=lambda r: f"Row {r + 1}"
    )
    keys = [c["key"] for c in comparison.contenders]
    order = (
        blind_order(comparison_id=comparison.id, row_index=chosen, keys=keys, rater=RATER)
        if blind
        else keys
    )
    row_detail(by_row[chosen], order, _titles(comparison, order, blind), blind=blind)
