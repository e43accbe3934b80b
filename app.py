"""Prompt Studio: the browser face. `streamlit run app.py`."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio.core.identity import set_actor
from studio.ui import auth
from studio.ui.common import gateway_url, open_database, sidebar_account, sidebar_navigation

st.set_page_config(page_title="Prompt Studio", page_icon=":material/auto_awesome:", layout="wide")

# (page file, title, icon): who may open each page is studio.ui.auth.PAGE_ROLES.
PAGE_FILES = [
    ("pages/home.py", "Home", ":material/home:"),
    ("pages/apps.py", "Apps", ":material/apps:"),
    ("pages/datasets.py", "Datasets", ":material/table:"),
    ("pages/knowledge.py", "Knowledge", ":material/menu_book:"),
    ("pages/playground.py", "Playground", ":material/science:"),
    ("pages/variants.py", "Variants", ":material/history:"),
    ("pages/evaluations.py", "Evaluations", ":material/fact_check:"),
    ("pages/compare.py", "Compare", ":material/compare:"),
    ("pages/review.py", "Review", ":material/rate_review:"),
    ("pages/jobs.py", "Jobs", ":material/pending_actions:"),
    ("pages/models.py", "Models", ":material/neurology:"),
    ("pages/finetuning.py", "Fine-tuning", ":material/model_training:"),
    ("pages/deploy.py", "Deploy", ":material/rocket_launch:"),
    ("pages/monitoring.py", "Monitoring", ":material/monitoring:"),
    ("pages/users.py", "People", ":material/group:"),
    ("pages/audit.py", "Audit log", ":material/policy:"),
    ("pages/account.py", "Account", ":material/account_circle:"),
]

# Who is at the browser decides the default page and which links show. Every page stays in
# st.navigation, so a bookmark to a page the role may not open shows a sentence (the page's
# own gate), not Streamlit's "page not found".
open_database()
actor = auth.resolve_actor()
home = "review" if actor is not None and actor.role == "reviewer" else "home"
PAGES = [
    st.Page(path, title=title, icon=icon, default=Path(path).stem == home)
    for path, title, icon in PAGE_FILES
]

# The navigation is drawn by us (config: client.showSidebarNavigation = false), first thing,
# so it shows before the slow start-up below and before the page's own imports.
current = st.navigation(PAGES, position="hidden")
actor = auth.gate(auth.EVERYONE)  # the sign-in form, or the refusal without sign-in, stops here
set_actor(actor)
by_name = {Path(path).stem: page for page, (path, _, _) in zip(PAGES, PAGE_FILES, strict=True)}
if current is by_name["home"] and not auth.may_open(actor, "home"):
    st.switch_page(by_name["review"])  # a reviewer who just signed in on the studio's address
sidebar_navigation([page for name, page in by_name.items() if auth.may_open(actor, name)])
sidebar_account(actor)
gateway_url()  # deployed endpoints answer as soon as the studio runs (see STUDIO_GATEWAY_PORT)
current.run()
