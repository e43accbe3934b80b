"""Review page, "To review": one item at a time, the criteria beside it, keyboard keys.

Each press saves at once (:func:`studio.services.reviews.rate`), so closing the browser
loses nothing: the queue resumes at the next unrated item. A/B items are blind: the two
outputs are "Left" and "Right", never a contender's name, in an order shuffled per item.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from studio.services.reviews import QueueItem, list_reviews, next_item, progress, rate, undo_last
from studio.store.tables import HumanReview
from studio.ui.common import show_error, studio_session

__all__ = ["rate_panel"]

PICKED = "review_rate_pick"
FLASH = "review_rate_flash"

BUTTONS: dict[str, list[tuple[str, str, str, str]]] = {
    # (rating, label, shortcut, type)
    "binary": [("good", "Good", "g", "primary"), ("bad", "Bad", "b", "secondary")],
    "scale": [(str(n), str(n), str(n), "secondary") for n in range(1, 6)],
    "pairwise": [
        ("left", "Left is better", "1", "secondary"),
        ("tie", "Tie", "t", "secondary"),
        ("right", "Right is better", "2", "secondary"),
    ],
}
KEYS_SENTENCE = {
    "binary": "Keys: **g** good, **b** bad, **s** skip, **u** undo the last rating.",
    "scale": "Keys: **1** to **5** rate, **s** skip, **u** undo the last rating.",
    "pairwise": "Keys: **1** left is better, **2** right is better, **t** tie, **s** skip, "
    "**u** undo.",
}


def _give(review_id: int, item_id: int, rating: str) -> None:
    """Button callback: save the rating (with the comment typed for this item)."""
    comment = st.session_state.get(f"review_comment_{item_id}", "") or ""
    try:
        with studio_session() as session:
            rate(
                session=session, review_id=review_id, item_id=item_id, rating=rating,
                comment=comment,
            )  # fmt: skip
        st.session_state[FLASH] = None
    except Exception as exc:
        st.session_state[FLASH] = exc


def _undo(review_id: int) -> None:
    try:
        with studio_session() as session:
            undone = undo_last(session=session, review_id=review_id)
        st.session_state[FLASH] = "undone" if undone else "nothing"
    except Exception as exc:
        st.session_state[FLASH] = exc


def _criteria(review: HumanReview) -> None:
    c = review.criteria or {}
    with st.container(border=True):
        st.markdown("**The task**")
        st.text(c.get("task", ""))
        if c.get("good"):
            st.markdown("**A good output**")
            st.text(c["good"])
        if c.get("bad"):
            st.markdown("**A bad output**")
            st.text(c["bad"])
        if c.get("examples"):
            with st.expander("Examples"):
                st.text(c["examples"])


def _inputs(item: QueueItem) -> None:
    shown = {k: v for k, v in item.inputs.items() if k != "request_id"}
    if shown:
        st.markdown("**Inputs**")
        st.table({"Input": list(shown), "Value": [str(v) for v in shown.values()]})
    if item.prompt:
        with st.expander("Show the prompt the model saw"):
            st.text(item.prompt)


def _outputs(review: HumanReview, item: QueueItem) -> None:
    if review.kind == "pairwise":
        left, right = st.columns(2)
        for column, title, text in (
            (left, "Left", item.outputs[0]),
            (right, "Right", item.outputs[1]),
        ):
            with column.container(border=True):
                st.markdown(f"**{title}**")
                st.text(text)
        return
    with st.container(border=True):
        st.markdown("**Output**" + (f" · {item.contender}" if item.contender else ""))
        st.text(item.outputs[0] if item.outputs else "")


def _buttons(review: HumanReview, item: QueueItem) -> None:
    st.text_input(
        "Comment (optional, saved with your rating)",
        key=f"review_comment_{item.item_id}",
        placeholder="What made you decide?",
    )
    specs = BUTTONS[review.kind]
    columns = st.columns(len(specs) + 2)
    for column, (rating, label, key, kind) in zip(columns, specs, strict=False):
        column.button(
            label, key=f"review_give_{rating}", shortcut=key, type=kind,  # type: ignore[arg-type]
            on_click=_give, args=(int(review.id or 0), item.item_id, rating), width="stretch",
        )  # fmt: skip
    columns[-2].button(
        "Skip", key="review_give_skip", shortcut="s", on_click=_give,
        args=(int(review.id or 0), item.item_id, "skip"), width="stretch",
    )  # fmt: skip
    columns[-1].button(
        "Undo last", key="review_undo", shortcut="u", on_click=_undo,
        args=(int(review.id or 0),), icon=":material/undo:", width="stretch",
    )  # fmt: skip
    st.caption(KEYS_SENTENCE[review.kind])


def _flash() -> None:
    flash: Any = st.session_state.get(FLASH)
    if isinstance(flash, BaseException):
        show_error(flash)
    elif flash == "undone":
        st.info("Your last rating was taken back; the item is shown again.")
    elif flash == "nothing":
        st.info("You have not rated anything in this review yet.")
    st.session_state[FLASH] = None


def rate_panel() -> None:
    """The rater's queue: pick a review given to you, then rate item by item."""
    with studio_session() as session:
        reviews = list_reviews(session=session)
    if not reviews:
        st.info(
            "Nothing to review yet: when a teammate gives you a review, its items appear "
            "here, one at a time."
        )
        return
    by_id = {int(r.id or 0): r for r in reviews}
    if st.session_state.get(PICKED) not in by_id:
        st.session_state[PICKED] = next(iter(by_id))
    review_id = st.selectbox(
        "Review", list(by_id), key=PICKED, format_func=lambda i: f"{by_id[i].name} (#{i})"
    )
    review = by_id[review_id]
    _flash()
    try:
        with studio_session() as session:
            item = next_item(session=session, review_id=review_id)
            overall = progress(session=session, review_id=review_id)
    except Exception as exc:
        show_error(exc)
        return
    if item is None:
        st.success(
            "You have rated everything this review has for you. Thank you! "
            f"Overall: {overall['sentence']}"
        )
        st.button("Undo last", key="review_undo_done", on_click=_undo, args=(review_id,))
        return
    total = item.mine_done + item.mine_left
    st.progress(
        item.mine_done / total if total else 0.0,
        text=f"You have rated {item.mine_done} of {total} items open to you "
        f"(item {item.position + 1} of the review).",
    )
    if item.previous == "skip":
        st.caption("You skipped this item earlier; it is back now that the others are done.")
    main, side = st.columns([3, 2])
    with side:
        _criteria(review)
    with main:
        _inputs(item)
        _outputs(review, item)
        _buttons(review, item)
