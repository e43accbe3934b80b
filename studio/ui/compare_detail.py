"""A row's outputs in full, side by side, and a word-level diff between two contenders.

Outputs are untrusted text: the diff escapes every word (``html.escape``) before it
wraps the changed ones in ``<del>``/``<ins>``, and newlines become ``<br>`` so the
whole diff stays one HTML block that Markdown does not touch.
"""

from __future__ import annotations

import difflib
import html
from typing import Any

import streamlit as st

__all__ = ["row_detail", "word_diff_html"]

DEL = '<del style="background:#fde2e1;color:#8a1c1c;text-decoration:line-through">'
INS = '<ins style="background:#dcf5e3;color:#14532d;text-decoration:none">'


def _words(text: str) -> list[str]:
    """Words, with each line break kept as a word of its own."""
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            out.append("\n")
        out += line.split()
    return out


def _join(words: list[str]) -> str:
    return " ".join(html.escape(w) for w in words).replace(" \n ", "<br>").replace("\n", "<br>")


def word_diff_html(a: str, b: str) -> str:
    """``a`` to ``b`` word by word: removed words struck through, added ones highlighted."""
    left, right = _words(a or ""), _words(b or "")
    parts: list[str] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(_join(left[i1:i2]))
            continue
        if i2 > i1:
            parts.append(f"{DEL}{_join(left[i1:i2])}</del>")
        if j2 > j1:
            parts.append(f"{INS}{_join(right[j1:j2])}</ins>")
    return " ".join(p for p in parts if p)


def _text(cell: dict[str, Any]) -> str:
    if cell.get("output") is not None:
        return str(cell["output"])
    if cell.get("error"):
        return f"(no answer: {cell['error']})"
    return "(not answered yet)"


def row_detail(
    row: dict[str, Any], order: list[str], titles: dict[str, str], *, blind: bool
) -> None:
    """All of a row's outputs in full; outside blind mode, a diff between two of them."""
    st.markdown(f"**Row {row['row'] + 1}**, inputs:")
    st.code(
        "\n".join(f"{k}: {v}" for k, v in row["inputs"].items()), language=None, wrap_lines=True
    )
    columns = st.columns(len(order))
    for column, key in zip(columns, order, strict=True):
        with column:
            st.markdown(f"**{titles[key]}**")
            st.code(_text(row["cells"][key]), language=None, wrap_lines=True)
    if blind:
        st.caption("Turn blind mode off to see a word-level diff between two named contenders.")
        return
    keys = list(order)
    c1, c2 = st.columns(2)
    first = c1.selectbox(
        "Differences from", keys, key="cmp_diff_a", format_func=lambda k: titles[k]
    )
    others = [k for k in keys if k != first] or keys
    if st.session_state.get("cmp_diff_b") not in others:
        st.session_state.cmp_diff_b = others[0]
    second = c2.selectbox("to", others, key="cmp_diff_b", format_func=lambda k: titles[k])
    diff = word_diff_html(_text(row["cells"][first]), _text(row["cells"][second]))
    st.markdown(
        f'<div style="line-height:1.7;padding:0.5rem 0">{diff or "(both empty)"}</div>',
        unsafe_allow_html=True,
    )
    st.caption(
        f"Struck-through red words are only in {titles[first]}; green words are only in "
        f"{titles[second]}; the rest is the same in both."
    )
