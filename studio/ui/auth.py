"""Who is at the browser: the sign-in gate every page passes through.

* ``STUDIO_AUTH=none``: no sign-in; the one person at this machine is an administrator.
  Refused unless Streamlit listens on a loopback address only (``server.address`` of
  127.0.0.1, localhost or ::1): Streamlit's default listens on every network interface,
  and then anyone who can reach the machine would be an administrator.
* ``STUDIO_AUTH=local`` (the default): studio accounts. A studio without any account
  shows the "Create the first administrator" form; otherwise a sign-in form.
  A successful sign-in starts a browser session (:func:`studio.services.users.start_session`):
  its token is kept in ``st.session_state`` for this tab and in the ``studio_session``
  cookie (Path=/, SameSite=Strict, Max-Age = ``STUDIO_SESSION_HOURS``) so a reload keeps
  the person signed in. Streamlit only reads cookies (``st.context.cookies``), so the cookie
  is written by a two-line script that ``st.html`` runs in the page itself.
* Optional single sign-on with Streamlit's OpenID Connect support (``st.login``) when
  ``[auth]`` is configured in ``.streamlit/secrets.toml``: the signed-in email must be the
  name of an existing studio account; nobody is created from single sign-on.

:func:`gate` signs the visitor in and sets the actor (:func:`studio.core.identity.set_actor`)
for the script run; widget callbacks run before the page body, so the gate also makes
Streamlit set the same actor before it runs them (:func:`_install_callback_actor`).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import re
from functools import wraps

import streamlit as st
from sqlmodel import Session
from streamlit import config

from studio.core.errors import NotFoundError, StudioError
from studio.core.identity import Actor, Role, acting_as, set_actor
from studio.core.settings import get_settings
from studio.services import users
from studio.store import session_scope

__all__ = [
    "ADMINS",
    "COOKIE",
    "EVERYONE",
    "LOCAL_ADMIN",
    "TEAM",
    "TOKEN_KEY",
    "a_role",
    "account_for_sso",
    "allowed",
    "browser_address",
    "cookie_script",
    "gate",
    "listens_on_loopback_only",
    "may_open",
    "page_roles",
    "refusal_sentence",
    "resolve_actor",
    "role_label",
    "sign_out",
    "start_browser_session",
]

log = logging.getLogger(__name__)

COOKIE = "studio_session"
TOKEN_KEY = "studio_session_token"
_COOKIE_OP = "studio_cookie_op"  # ("set", token) or ("clear", "") for the next run
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{10,200}$")

EVERYONE: tuple[Role, ...] = ("admin", "member", "reviewer")
TEAM: tuple[Role, ...] = ("admin", "member")
ADMINS: tuple[Role, ...] = ("admin",)
# Who may open which page (by file name in pages/); any other page is for the team.
PAGE_ROLES: dict[str, tuple[Role, ...]] = {
    "review": EVERYONE,
    "account": EVERYONE,
    "users": ADMINS,
    "audit": ADMINS,
}

LOCAL_ADMIN = Actor(kind="operator", name="local user", role="admin", origin="ui")
_SSO_LOOKUP = Actor(kind="operator", name="single sign-on", role="admin", origin="ui sso")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def page_roles(page: str) -> tuple[Role, ...]:
    """The roles that may open ``page`` (a file name without ``.py``)."""
    return PAGE_ROLES.get(page, TEAM)


def allowed(actor: Actor, roles: tuple[Role, ...]) -> bool:
    return actor.kind == "operator" or (actor.kind == "user" and actor.role in roles)


def may_open(actor: Actor, page: str) -> bool:
    """Whether ``actor`` may open ``page`` (the navigation shows only these)."""
    return allowed(actor, page_roles(page))


def role_label(role: str | None) -> str:
    return {"admin": "administrator"}.get(role or "", role or "")


def a_role(role: str | None) -> str:
    """``an administrator``, ``a member``, ``a reviewer``."""
    label = role_label(role)
    return f"{'an' if label[:1] in 'aeiou' else 'a'} {label}"


def refusal_sentence(actor: Actor, roles: tuple[Role, ...]) -> str:
    """What a person sees on a page their role may not open."""
    who = f"You are signed in as {actor.name}, {a_role(actor.role)}."
    if roles == ADMINS:
        need = "This page is for administrators."
    else:
        need = "This page is for " + " and ".join(f"{role_label(r)}s" for r in roles) + "."
    if actor.role == "reviewer":
        tail = "Your review queue is on the Review page."
    else:
        tail = "Ask an administrator if you need it."
    return f"{need} {who} {tail}"


def listens_on_loopback_only(address: str | None, *, app_test: bool = False) -> bool:
    """True when ``server.address`` keeps the UI on this machine. Unset means every network
    interface (Streamlit's default), except under AppTest, where nothing listens at all."""
    if not address or not address.strip():
        return app_test
    host = address.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_here() -> bool:
    # streamlit.config.get_option, not st.get_option: AppTest patches the module's function.
    address = config.get_option("server.address")
    return listens_on_loopback_only(
        str(address) if address else None, app_test=bool(config.get_option("global.appTest"))
    )


def browser_address() -> str:
    """The visitor's network address as Streamlit sees it (empty when unknown)."""
    try:
        return str(st.context.ip_address or "")
    except Exception:  # no browser behind this run
        return ""


def _origin() -> str:
    return f"ui {browser_address()}".strip()


def _cookie_token() -> str | None:
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:
        return None
    return value if isinstance(value, str) and _TOKEN_SHAPE.match(value) else None


def _sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml
        return False


def _sso_email() -> str | None:
    if not _sso_configured():
        return None
    try:
        if not st.user.is_logged_in:
            return None
        email = st.user.get("email")
    except Exception:
        return None
    return str(email) if email else None


def account_for_sso(*, session: Session, email: str | None, origin: str = "ui sso") -> Actor | None:
    """The studio account whose name is ``email`` (case does not matter), or ``None`` for an
    unknown or disabled person. Never creates an account, so single sign-on cannot make
    anyone an administrator."""
    if not email or not email.strip() or email.strip().isdigit():
        return None
    with acting_as(_SSO_LOOKUP):
        try:
            user = users.get_user(session=session, ref=email.strip())
        except NotFoundError:
            return None
    if user.disabled:
        return None
    return users.actor_for_user(user, origin=origin)


def resolve_actor() -> Actor | None:
    """The person at the browser, or ``None`` when nobody is signed in. Draws nothing."""
    if get_settings().auth == "none":
        return LOCAL_ADMIN.at(_origin()) if _loopback_here() else None
    origin = _origin()
    with session_scope() as session:
        token = st.session_state.get(TOKEN_KEY)
        if token:
            actor = users.session_actor(session=session, token=str(token), origin=origin)
            if actor is not None:
                return actor
            st.session_state.pop(TOKEN_KEY, None)
        cookie = _cookie_token()
        if cookie and cookie != st.session_state.get("studio_signed_out_token"):
            actor = users.session_actor(session=session, token=cookie, origin=origin)
            if actor is not None:
                st.session_state[TOKEN_KEY] = cookie
                return actor
        email = _sso_email()
        if email:
            return account_for_sso(session=session, email=email, origin=f"{origin} sso")
    return None


def _install_callback_actor() -> None:
    """Make widget callbacks run as the person at the browser.

    Streamlit runs a widget's ``on_click``/``on_change`` callback at the start of the next
    script run, in a new thread, before the page body (and so before :func:`gate`): the
    actor would be :data:`~studio.core.identity.ANONYMOUS` and every service would refuse.
    Streamlit has no hook for "before callbacks", so its ``SessionState.on_script_will_rerun``
    (which dispatches them) is wrapped once per process to set this session's actor first.
    Without the wrapper (another Streamlit), :func:`studio.ui.common.studio_session` still
    restores it for callbacks that open a database session.
    """
    try:
        from streamlit.runtime.state.session_state import SessionState
    except ImportError:  # pragma: no cover - another Streamlit
        return
    original = getattr(SessionState, "on_script_will_rerun", None)
    if original is None or getattr(original, "_studio_actor", False):
        return

    @wraps(original)
    def on_script_will_rerun(self: object, *args: object, **kwargs: object) -> object:
        try:
            actor = resolve_actor()
        except Exception:  # never break Streamlit's run: the services refuse anyway
            log.exception("could not tell who is at the browser before the callbacks")
            actor = None
        if actor is not None:
            set_actor(actor)
        return original(self, *args, **kwargs)

    on_script_will_rerun._studio_actor = True  # type: ignore[attr-defined]
    SessionState.on_script_will_rerun = on_script_will_rerun  # type: ignore[method-assign,assignment]


def cookie_script(token: str | None, hours: float) -> str:
    """The script that writes (or, for ``None``, deletes) the session cookie."""
    if token is not None and not _TOKEN_SHAPE.match(token):
        raise ValueError("not a session token")
    value, max_age = (token, int(hours * 3600)) if token else ("", 0)
    return (
        "<script>(function(){var secure=location.protocol==='https:'?'; Secure':'';"
        f"document.cookie='{COOKIE}={value}; Path=/; Max-Age={max_age}; SameSite=Strict'+secure;"
        "var me=document.currentScript;if(me&&me.parentNode){me.parentNode.removeChild(me);}"
        "})();</script>"
    )


def _write_pending_cookie() -> None:
    op = st.session_state.pop(_COOKIE_OP, None)
    if not op:
        return
    kind, token = op
    script = cookie_script(token if kind == "set" else None, get_settings().session_hours)
    st.html(script, unsafe_allow_javascript=True, width=1)


def start_browser_session(user_id: int) -> None:
    """Sign this browser in as ``user_id``: a new session, its token in this tab and (on the
    next run) in the cookie."""
    with session_scope() as session:
        token = users.start_session(session=session, user_id=user_id, address=browser_address())
    st.session_state[TOKEN_KEY] = token
    st.session_state[_COOKIE_OP] = ("set", token)
    st.session_state.pop("studio_signed_out_token", None)


def sign_out() -> None:
    """End this browser's session (the row, the token here, the cookie, single sign-on)."""
    token = st.session_state.pop(TOKEN_KEY, None)
    cookie = _cookie_token()
    with session_scope() as session:
        for t in {token, cookie} - {None}:
            users.end_session(session=session, token=t)
    if cookie:
        st.session_state["studio_signed_out_token"] = cookie
    st.session_state[_COOKIE_OP] = ("clear", "")
    if _sso_email():
        st.logout()


def _refuse_no_auth_off_loopback() -> None:
    address = config.get_option("server.address") or "every network interface (Streamlit's default)"
    st.error(
        "The studio is set to run without sign-in (STUDIO_AUTH=none), but it listens on "
        f"{address}, so anyone who can reach this machine would be an administrator. "
        "Start it with `streamlit run app.py --server.address 127.0.0.1` to keep it on this "
        "machine, or unset STUDIO_AUTH so that people sign in with accounts."
    )
    st.stop()


def gate(roles: tuple[Role, ...] = TEAM) -> Actor:
    """Sign the visitor in (or show why not and stop the page), set the actor for this run,
    and stop with a sentence when ``roles`` may not open the page."""
    if get_settings().auth == "none" and not _loopback_here():
        _refuse_no_auth_off_loopback()
    _install_callback_actor()
    actor = resolve_actor()
    if actor is None:
        sign_in_screen()
        st.stop()
        raise AssertionError("unreachable")  # st.stop() ends the run
    set_actor(actor)
    _write_pending_cookie()
    if not allowed(actor, roles):
        st.warning(refusal_sentence(actor, roles))
        st.stop()
    return actor


def _show(exc: StudioError) -> None:
    st.error(exc.message)
    if exc.hint:
        st.caption(exc.hint)


def sign_in_screen() -> None:
    """The first-administrator form on a studio without accounts, else the sign-in form."""
    _write_pending_cookie()
    with session_scope() as session:
        first = users.needs_first_admin(session=session)
    if first:
        _first_admin_form()
    else:
        _sign_in_form()


def _first_admin_form() -> None:
    st.title("Create the first administrator")
    st.write(
        "This studio has no accounts yet. The account you create now is its administrator: "
        "it adds the other people, connects model providers and sees every app. Pick a name "
        "and a password of at least "
        f"{users.MIN_PASSWORD_CHARS} characters; nobody can read the password back, "
        "so keep it somewhere safe."
    )
    with st.form("studio_first_admin", border=True):
        name = st.text_input("Your name", key="studio_first_name", max_chars=users.NAME_CHARS)
        password = st.text_input("Password", type="password", key="studio_first_password")
        again = st.text_input("Password again", type="password", key="studio_first_again")
        submitted = st.form_submit_button("Create the administrator", type="primary")
    if not submitted:
        return
    if password != again:
        st.error("The two passwords are not the same. Type them again.")
        return
    try:
        with session_scope() as session:
            user = users.create_first_admin(session=session, name=name, password=password)
    except StudioError as exc:
        _show(exc)
        return
    start_browser_session(user.id)
    st.rerun()


def _sign_in_form() -> None:
    st.title("Sign in to Prompt Studio")
    st.write("Sign in with the name and password an administrator gave you.")
    with st.form("studio_sign_in", border=True):
        name = st.text_input("Name", key="studio_sign_in_name", max_chars=users.NAME_CHARS)
        password = st.text_input("Password", type="password", key="studio_sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    refused = False
    if submitted:
        try:
            with session_scope() as session:
                user = users.sign_in(
                    session=session, name=name, password=password, address=browser_address()
                )
        except StudioError as exc:
            _show(exc)
            refused = True
        else:
            start_browser_session(user.id)
            st.rerun()
    if _sso_configured():
        _sso_part()
    if not refused:  # a refusal's own hint already says it
        st.caption("Forgot your password? An administrator can set a new one on the People page.")


def _sso_part() -> None:
    email = _sso_email()
    if email:
        st.warning(
            f"You signed in with single sign-on as {email}, but this studio has no active "
            "account with that name. Ask an administrator to add you on the People page, "
            "with your email address as the name."
        )
        if st.button("Sign out of single sign-on", key="studio_sso_logout"):
            st.logout()
        return
    st.write("Or, if your organisation's sign-in is set up for this studio:")
    missing = importlib.util.find_spec("authlib") is None
    if missing:
        st.caption(
            "Single sign-on is set up in secrets.toml, but Streamlit needs the Authlib package "
            "for it: an administrator can install it with `pip install Authlib`."
        )
    if st.button("Sign in with single sign-on", key="studio_sso_login", disabled=missing):
        st.login()
