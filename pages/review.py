"""Review: the outputs a teammate asked you to rate (reviewers, members and administrators);
an app's people also create reviews and read their results here."""

from __future__ import annotations

from studio.ui import db_ready, page_header
from studio.ui.review_page import review_page

page_header(
    "Review",
    "Rate model outputs against the criteria your team wrote: good or bad, a score from 1 "
    "to 5, or which of two answers is better (blind). Each rating is saved the moment you "
    "give it.",
)
db_ready()
review_page()
