"""The Variants page, driven with AppTest: list, history, diff, fork, rename, archive, edit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.variants import (
    VariantConfig,
    create_variant,
    history,
    list_variants,
    save_version,
    version_config,
)
from studio.store import session_scope

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = str(ROOT / "pages" / "variants.py")


def _config(template: str, **params: Any) -> VariantConfig:
    return VariantConfig(
        model="mock/echo",
        prompt=PromptTemplate.completion(template),
        parameters=params,
    )


def _app_with_variants() -> tuple[int, int]:
    """An app with 'email' (v1, v2) and 'chat' (v1); returns (app id, email's variant id)."""
    with session_scope() as session:
        app = create_app(session=session, name="Marketing copy")
        assert app.id is not None
        v1 = create_variant(
            session=session,
            app_id=app.id,
            name="email",
            config=_config("Email about {{event}}", max_tokens=20),
            note="first try",
        )
        save_version(
            session=session,
            variant_id=v1.variant_id,
            config=_config("Warm email about {{event}}", max_tokens=20, temperature=0.5),
            note="warmer",
        )
        chat = PromptTemplate.chat(
            [{"role": "user", "content": "Answer: {{q}}"}], system="Be brief."
        )
        create_variant(
            session=session,
            app_id=app.id,
            name="chat",
            config=VariantConfig(model="mock/echo", prompt=chat),
        )
        return app.id, v1.variant_id


def _open(variant_id: int | None = None) -> AppTest:
    at = AppTest.from_file(VARIANTS, default_timeout=60)
    if variant_id is not None:
        at.session_state["variants_selected"] = variant_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _frame(at: AppTest, key: str) -> Any:
    """The variants table comes first, the open variant's history second."""
    return at.dataframe[["variants_table", "variants_history"].index(key)].value


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_without_apps_the_page_points_to_the_apps_page() -> None:
    at = _open()
    assert any("No apps yet. Variants belong to an app" in i.value for i in at.info)
    assert any("Apps page" in i.value for i in at.info)


def test_an_app_without_variants_says_how_to_make_one() -> None:
    with session_scope() as session:
        create_app(session=session, name="Support")
    at = _open()
    [info] = at.info
    assert "No variants in 'Support' yet" in info.value and "Playground" in info.value
    assert any('studio variant create --app "Support"' in c.value for c in at.code)
    assert not at.dataframe


def test_lists_variants_with_latest_version_and_model() -> None:
    _app_with_variants()
    at = _open()
    table = _frame(at, "variants_table")
    assert list(table["Name"]) == ["chat", "email"]
    assert list(table["Latest version"]) == [1, 2]
    assert list(table["Model"]) == ["mock/echo", "mock/echo"]
    assert all(s.endswith("UTC") for s in table["Last saved"])
    assert "Status" not in table.columns


def test_history_lists_versions_and_shows_a_chosen_version() -> None:
    _, email = _app_with_variants()
    at = _open(email)
    versions = _frame(at, "variants_history")
    assert list(versions["Version"]) == [2, 1]
    assert list(versions["Note"]) == ["warmer", "first try"]
    assert list(versions["Parameters"]) == [
        "Temperature 0.5 · Max tokens 20",
        "Max tokens 20",
    ]
    assert any(c.value == "Warm email about {{event}}" for c in at.code)  # latest by default

    with session_scope() as session:
        v1 = history(session=session, variant_id=email)[-1]
    at.selectbox(key=f"variants_version_{email}").set_value(v1.id).run()
    assert any(c.value == "Email about {{event}}" for c in at.code)
    assert any("Temperature: model default" in m.value for m in at.markdown)


def test_chat_prompt_is_shown_as_messages_with_roles() -> None:
    _app_with_variants()
    at = _open()  # 'chat' comes first by name
    bubbles = at.chat_message
    assert [b.name for b in bubbles] == ["system", "user"]
    assert bubbles[0].text[0].value == "Be brief."
    assert bubbles[1].text[0].value == "Answer: {{q}}"


def test_diff_between_v1_and_v2_shows_the_changed_lines() -> None:
    _, email = _app_with_variants()
    at = _open(email)
    [diff] = [c for c in at.code if c.language == "diff"]
    assert "-  Email about {{event}}" in diff.value
    assert "+  Warm email about {{event}}" in diff.value
    assert "+  temperature: 0.5" in diff.value
    assert "(id " not in diff.value and "@@" not in diff.value  # no database ids, no jargon

    with session_scope() as session:
        latest = history(session=session, variant_id=email)[0]
    at.selectbox(key=f"variants_diff_a_{email}").set_value(latest.id).run()
    assert not [c for c in at.code if c.language == "diff"]
    assert any("v2 and v2 are identical" in i.value for i in at.info)


def test_a_variant_with_one_version_has_nothing_to_compare() -> None:
    _app_with_variants()
    at = _open()  # 'chat' has one version
    assert any("one version so far" in i.value for i in at.info)


def test_fork_creates_a_new_variant_from_the_chosen_version() -> None:
    app_id, email = _app_with_variants()
    at = _open(email)
    at.text_input(key=f"variants_fork_name_{email}").set_value("email formal")
    at.selectbox(key=f"variants_fork_version_{email}").set_value(1)
    at.button(key=f"variants_fork_{email}").click().run()
    assert not at.exception and not _errors(at)
    assert list(_frame(at, "variants_table")["Name"]) == ["chat", "email", "email formal"]
    assert any("Forked v1 into a new variant" in s.value for s in at.success)
    with session_scope() as session:
        fork = next(
            v for v in list_variants(session=session, app_id=app_id) if v.name == "email formal"
        )
        [only] = history(session=session, variant_id=fork.id)
        assert version_config(only).prompt.template == "Email about {{event}}"
    assert at.selectbox(key="variants_selected").value == fork.id
    assert any("forked from 'email' v1" in c.value for c in at.caption)


def test_fork_with_an_empty_name_says_so() -> None:
    _, email = _app_with_variants()
    at = _open(email)
    at.text_input(key=f"variants_fork_name_{email}").set_value("   ")
    at.button(key=f"variants_fork_{email}").click().run()
    assert not at.exception
    assert "New variant name must not be empty." in _errors(at)
    assert len(_frame(at, "variants_table")) == 2


def test_rename_and_a_taken_name() -> None:
    _, email = _app_with_variants()
    at = _open(email)
    at.text_input(key=f"variants_rename_name_{email}").set_value("newsletter email")
    at.button(key=f"variants_rename_{email}").click().run()
    assert list(_frame(at, "variants_table")["Name"]) == ["chat", "newsletter email"]
    assert any("Renamed the variant to 'newsletter email'" in s.value for s in at.success)

    at.text_input(key=f"variants_rename_name_{email}").set_value("chat")
    at.button(key=f"variants_rename_{email}").click().run()
    assert "This app already has a variant named 'chat'." in _errors(at)


def test_archive_hides_a_variant_unless_show_archived_and_restore_brings_it_back() -> None:
    app_id, email = _app_with_variants()
    at = _open(email)
    at.button(key=f"variants_archive_{email}").click().run()
    assert not at.exception
    assert list(_frame(at, "variants_table")["Name"]) == ["chat"]
    assert any("Archived 'email'" in s.value for s in at.success)
    assert any("1 archived variant(s) hidden" in c.value for c in at.caption)

    at.toggle(key="variants_show_archived").set_value(True).run()
    table = _frame(at, "variants_table")
    assert list(zip(table["Name"], table["Status"], strict=True)) == [
        ("chat", "active"),
        ("email", "archived"),
    ]
    at.selectbox(key="variants_selected").set_value(email).run()
    at.button(key=f"variants_restore_{email}").click().run()
    with session_scope() as session:
        names = [v.name for v in list_variants(session=session, app_id=app_id)]
    assert names == ["chat", "email"]


def test_archiving_the_last_variant_says_how_to_see_it() -> None:
    with session_scope() as session:
        app = create_app(session=session, name="Support")
        assert app.id is not None
        only = create_variant(session=session, app_id=app.id, name="a", config=_config("Hi"))
    at = _open()
    at.button(key=f"variants_archive_{only.variant_id}").click().run()
    assert any("1 archived variant(s) are hidden" in i.value for i in at.info)


def test_saving_the_form_adds_a_version() -> None:
    _, email = _app_with_variants()
    at = _open(email)
    with session_scope() as session:
        base = history(session=session, variant_id=email)[0].id
    prefix = f"variants_edit_{base}"
    assert at.text_area(key=f"{prefix}_template").value == "Warm email about {{event}}"
    assert at.number_input(key=f"{prefix}_temperature").value == 0.5
    at.text_area(key=f"{prefix}_template").set_value("Short email about {{event}}")
    at.number_input(key=f"{prefix}_max_tokens").set_value(60)
    at.text_area(key=f"{prefix}_stops").set_value("END\\n\n###")
    at.text_input(key=f"{prefix}_note").set_value("shorter")
    at.button(key=f"variants_save_{base}").click().run()
    assert not at.exception and not _errors(at)
    assert any("Saved version 3." in s.value for s in at.success)
    assert list(_frame(at, "variants_history")["Version"]) == [3, 2, 1]
    with session_scope() as session:
        newest = history(session=session, variant_id=email)[0]
    assert newest.note == "shorter"
    assert newest.template == "Short email about {{event}}"
    assert newest.parameters == {
        "temperature": 0.5,
        "max_tokens": 60,
        "stop_sequences": ["END\n", "###"],
    }
    assert at.selectbox(key=f"variants_edit_base_{email}").value == newest.id


def test_saving_an_unchanged_form_makes_no_version() -> None:
    _, email = _app_with_variants()
    at = _open(email)
    with session_scope() as session:
        base = history(session=session, variant_id=email)[0].id
    at.button(key=f"variants_save_{base}").click().run()
    assert any("Nothing changed" in i.value for i in at.info)
    assert list(_frame(at, "variants_history")["Version"]) == [2, 1]


def test_bad_form_input_shows_a_sentence_and_saves_nothing() -> None:
    _, email = _app_with_variants()
    at = _open(email)
    with session_scope() as session:
        base = history(session=session, variant_id=email)[0].id
    prefix = f"variants_edit_{base}"
    at.text_area(key=f"{prefix}_stops").set_value("a\nb\nc\nd\ne")
    at.button(key=f"variants_save_{base}").click().run()
    assert not at.exception
    assert "Stop sequences: at most 4 items allowed (got 5)." in _errors(at)

    at.text_area(key=f"{prefix}_stops").set_value("")
    at.text_area(key=f"{prefix}_template").set_value("  ")
    at.button(key=f"variants_save_{base}").click().run()
    assert "Prompt must not be empty." in _errors(at)
    assert list(_frame(at, "variants_history")["Version"]) == [2, 1]


def test_editing_a_chat_variant_adds_a_message() -> None:
    app_id, _ = _app_with_variants()
    at = _open()  # 'chat'
    with session_scope() as session:
        chat = next(v for v in list_variants(session=session, app_id=app_id) if v.name == "chat")
    prefix = f"variants_edit_{chat.latest_version_id}"
    assert at.text_area(key=f"{prefix}_system").value == "Be brief."
    at.selectbox(key=f"{prefix}_role_1").set_value("assistant")
    at.text_area(key=f"{prefix}_content_1").set_value("Sure.")
    at.button(key=f"variants_save_{chat.latest_version_id}").click().run()
    assert not _errors(at)
    with session_scope() as session:
        newest = history(session=session, variant_id=chat.id)[0]
    assert newest.version == 2
    assert newest.messages == [
        {"role": "user", "content": "Answer: {{q}}"},
        {"role": "assistant", "content": "Sure."},
    ]
    assert [b.name for b in at.chat_message] == ["system", "user", "assistant"]
