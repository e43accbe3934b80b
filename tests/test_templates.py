"""Prompt templates: variables, column checks, rendering and the sandbox."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.core.errors import (
    MissingColumnsError,
    PromptRenderError,
    PromptSyntaxError,
    StudioError,
    TemplateLimitError,
    UnsafeTemplateError,
)
from studio.core.schemas import Message
from studio.core.templates import (
    PromptTemplate,
    check_columns,
    prompt_variables,
    render,
    render_preview,
    require_columns,
    template_variables,
)

ROW = {"event": "product launch", "demographic": "students", "size": "150", "name": "ana"}


def _text(template: str, row: dict[str, str] | None = None) -> str:
    out = render(PromptTemplate.completion(template), ROW if row is None else row)
    assert isinstance(out, str)
    return out


# -- variables and columns ----------------------------------------------------


def test_variables_are_listed_in_order_of_first_appearance() -> None:
    source = "For {{demographic}}: {{ event|upper }} ({{ demographic }}), {{ user.name }}"
    assert template_variables(source) == ["demographic", "event", "user"]


def test_loop_and_set_names_are_not_variables() -> None:
    source = "{% set tone = 'warm' %}{% for item in items %}{{ item }}{{ loop.index }}{% endfor %}"
    assert template_variables(source + "{{ tone }}{{ range(2)|list }}") == ["items"]


def test_prompt_variables_span_system_and_every_message() -> None:
    prompt = PromptTemplate.chat(
        [
            {"role": "user", "content": "About {{event}}"},
            {"role": "assistant", "content": "Sure, for {{demographic}}?"},
            {"role": "user", "content": "Yes, {{demographic}}, {{size}} words"},
        ],
        system="You write for {{brand}}.",
    )
    assert prompt_variables(prompt) == ["brand", "event", "demographic", "size"]


def test_check_columns_reports_used_missing_and_unused() -> None:
    prompt = PromptTemplate.completion("{{event}} for {{demographic}} in {{size}}")
    check = check_columns(prompt, ["event", "demographic", "notes"])
    assert check.used == ["event", "demographic", "size"]
    assert check.missing == ["size"]
    assert check.unused == ["notes"]
    assert not check.ok


def test_missing_column_error_names_variable_and_lists_columns() -> None:
    prompt = PromptTemplate.completion("Write about {{event}} for {{demographic}}, {{size}}")
    with pytest.raises(MissingColumnsError) as info:
        require_columns(prompt, ["event", "demographic"])
    assert str(info.value) == (
        "The template uses {{size}}, but the dataset has no column 'size'. "
        "Columns: event, demographic. Rename the variable or pick another dataset."
    )
    assert info.value.missing == ["size"]


def test_missing_column_error_suggests_a_close_match() -> None:
    prompt = PromptTemplate.completion("{{event}} for {{demografic}}")
    with pytest.raises(MissingColumnsError, match="did you mean 'demographic'\\?"):
        require_columns(prompt, ["event", "demographic"])


def test_require_columns_passes_when_every_variable_is_a_column() -> None:
    prompt = PromptTemplate.completion("{{event}}")
    assert require_columns(prompt, ["event", "extra"]).unused == ["extra"]


# -- rendering ----------------------------------------------------------------


def test_completion_renders_row_values() -> None:
    assert _text("Write an email about {{event}} for {{demographic}}") == (
        "Write an email about product launch for students"
    )


def test_filters_and_conditionals_work() -> None:
    source = "{{ name|upper }}: {% if size|int > 100 %}long{% else %}short{% endif %}"
    assert _text(source) == "ANA: long"
    assert _text(source, {**ROW, "size": "20"}) == "ANA: short"
    assert _text("{{ name|title }} {{ name.upper() }} {{ [event, name]|join(', ') }}") == (
        "Ana ANA product launch, ana"
    )
    assert _text("{% for w in event.split() %}[{{ w }}]{% endfor %}") == "[product][launch]"


def test_trailing_newline_is_kept() -> None:
    assert _text("Hi {{name}}\n") == "Hi ana\n"


def test_chat_renders_each_message_with_system_first() -> None:
    prompt = PromptTemplate.chat(
        [
            {"role": "user", "content": "An email about {{event}}"},
            {"role": "assistant", "content": "For whom?"},
            {"role": "user", "content": "For {{demographic}}"},
        ],
        system="You write for {{ name|title }}.",
    )
    assert render(prompt, ROW) == [
        Message(role="system", content="You write for Ana."),
        Message(role="user", content="An email about product launch"),
        Message(role="assistant", content="For whom?"),
        Message(role="user", content="For students"),
    ]


def test_chat_without_system_prompt_starts_with_first_message() -> None:
    prompt = PromptTemplate.chat([{"role": "user", "content": "{{event}}"}])
    out = render(prompt, ROW)
    assert isinstance(out, list) and [m.role for m in out] == ["user"]


def test_prompt_kind_and_parts_must_agree() -> None:
    with pytest.raises(ValueError, match="kind 'chat'"):
        PromptTemplate(kind="completion", template="x", messages=[{"role": "user", "content": "y"}])
    with pytest.raises(ValueError, match="at least one message"):
        PromptTemplate(kind="chat", system="x")


def test_undefined_variable_at_render_time_names_it() -> None:
    with pytest.raises(MissingColumnsError) as info:
        _text("Hello {{ nmae }}")
    message = str(info.value)
    assert "{{nmae}}" in message and "did you mean 'name'?" in message
    assert "Columns: event, demographic, size, name." in message


def test_undefined_is_strict_even_inside_expressions() -> None:
    with pytest.raises(MissingColumnsError):
        _text("{{ missing|upper }}")
    with pytest.raises(PromptRenderError, match="has no attribute 'nope'"):
        _text("{{ name.nope }}")
    assert _text("{% if missing is defined %}yes{% else %}no{% endif %}") == "no"


def test_syntax_error_names_the_line_and_jinja_message() -> None:
    with pytest.raises(PromptSyntaxError) as info:
        _text("line one\nline two\n{{ event }\n")
    assert info.value.lineno == 3
    assert "line 3" in str(info.value) and "unexpected '}'" in str(info.value)


def test_syntax_error_in_chat_names_the_message() -> None:
    prompt = PromptTemplate.chat(
        [{"role": "user", "content": "ok"}, {"role": "user", "content": "{% if x %}open"}]
    )
    with pytest.raises(PromptSyntaxError, match=r"message 2 \(user\) \(line 1\)"):
        render(prompt, ROW)


def test_unknown_filter_is_a_syntax_error_listing_filters() -> None:
    with pytest.raises(PromptSyntaxError, match=r"No filter named 'shout'.*upper"):
        _text("{{ name|shout }}")


def test_render_preview_never_raises() -> None:
    ok = render_preview(PromptTemplate.completion("Hi {{name}}"), ROW)
    assert ok == ("Hi ana", None)
    result, error = render_preview(PromptTemplate.completion("Hi {{ nope }}"), ROW)
    assert result is None and error is not None and "{{nope}}" in error


# -- sandbox ------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self }}",
    "{{ self._TemplateReference__context }}",
    "{{ name.__len__() }}",
    "{{ ''['__class__'] }}",
    "{{ ''['__cl' ~ 'ass__'] }}",
    "{{ name|attr('__class__') }}",
    "{% set k = '__class__' %}{{ name|attr(k) }}",
    "{{ '{0.__class__}'.format(name) }}",
    "{{ name.upper }}",
    "{{ namespace }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_access_to_python_internals_is_refused(source: str) -> None:
    result, error = render_preview(PromptTemplate.completion(source), ROW)
    assert result is None
    assert error is not None and "which is not allowed" in error
    assert "<class" not in error and " at 0x" not in error
    with pytest.raises(UnsafeTemplateError, match="This template tries to"):
        _text(source)


@pytest.mark.parametrize(
    "tag", ["{% macro m() %}x{% endmacro %}", "{% include 'a' %}", "{% extends 'a' %}"]
)
def test_macros_and_includes_are_refused(tag: str) -> None:
    with pytest.raises(UnsafeTemplateError, match="which is not allowed"):
        _text(tag)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ range(10**9)|length }}", "range\\(\\) of 1,000,000,000 numbers"),
        ("{% for i in range(10**9) %}{% endfor %}", "range"),
        ("{{ 'a' * 10**9 }}", "larger than 1,000,000"),
        ("{{ 7 ** 999999 }}", "too large"),
        ("{{ name|center(10**8) }}", "larger than 1,000,000"),
        ("{{ '%0999999999d' % 1 }}", "larger than 1,000,000"),
        ("{{ '{:0999999999}'.format(1) }}", "larger than 1,000,000"),
        ("{{ 'ab'.replace('', 'x' * 900000) }}", "larger than 1,000,000"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "loops more than",
        ),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "larger than 1,000,000",
        ),
        ("{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}", "larger than 1,000,000"),
    ],
)
def test_resource_limits_stop_runaway_templates(source: str, message: str) -> None:
    with pytest.raises(TemplateLimitError, match=message):
        _text(source)


def test_output_just_under_the_limits_renders() -> None:
    assert len(_text("{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}")) == 100_000


FRAGMENTS = st.sampled_from(
    [
        "{{", "}}", "{%", "%}", "{#", "#}", " if ", " for ", " in ", "endif", "endfor",
        "event", "name", "size", "|upper", "|int", "|join", "|attr", "(", ")", "[", "]",
        "'", '"', ".", "__class__", "~", "*", "**", "%", "/", "0", "9", "range", "self",
        "namespace", "set", "=", ",", "\n", "-", "loop", "else", "not", "is defined",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.one_of(st.text(max_size=60), st.lists(FRAGMENTS | st.text(max_size=3)).map("".join)),
    row=st.dictionaries(st.sampled_from(["event", "name", "size", "x"]), st.text(max_size=10)),
)
def test_render_either_returns_or_raises_a_studio_error(source: str, row: dict[str, str]) -> None:
    try:
        out = render(PromptTemplate.completion(source), row)
    except StudioError as exc:
        assert str(exc)
    else:
        assert isinstance(out, str)
        assert "<class" not in out or "<class" in source + "".join(row.values())
