"""Human review: items from a run, several raters with agreement, resume, quotas,
blind A/B, settling disagreements, a judge against people, and who may do what."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlmodel import Session, func, select

from studio.core.errors import ConflictError, NotFoundError, PermissionDeniedError, StudioError
from studio.core.identity import Actor, acting_as
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import set_expected_column, upload_dataset
from studio.services.evaluations import EvaluatorConfig, create_evaluation, evaluate_sync
from studio.services.members import add_member
from studio.services.review_results import (
    disagreements,
    judge_vs_people,
    review_results,
    settle,
)
from studio.services.review_setup import ReviewSpec, create_review
from studio.services.reviews import (
    list_reviews,
    next_item,
    progress,
    rate,
    undo_last,
)
from studio.services.runs import RunConfig, create_run, run_sync
from studio.services.users import actor_for_user, create_user
from studio.store import session_scope
from studio.store.tables import ReviewRating

CSV = "city,answer\n" + "".join(f"City {i},echo: City {i}\n" for i in range(10))


def _run(session: Session, app_id: int, version_id: int, template: str) -> int:
    run = create_run(
        session=session,
        app_id=app_id,
        dataset_version_id=version_id,
        config=RunConfig(
            model="mock/echo", prompt=PromptTemplate(kind="completion", template=template)
        ),
    )
    session.commit()
    assert run.id is not None
    run_sync(run_id=run.id)
    return run.id


@pytest.fixture
def studio(session: Session, mock_provider: Any) -> dict[str, Any]:
    app = create_app(session=session, name="Capitals")
    other = create_app(session=session, name="Elsewhere")
    assert app.id is not None and other.id is not None
    version = upload_dataset(
        session=session, app_id=app.id, name="cities", data=CSV.encode(), filename="c.csv"
    )
    version = set_expected_column(
        session=session, version_id=version.id or 0, expected_column="answer"
    )
    session.commit()
    run_a = _run(session, app.id, version.id or 0, "{{city}}")
    run_b = _run(session, app.id, version.id or 0, "Capital {{city}}")
    people = {}
    for name, role in (("rita", "reviewer"), ("ravi", "reviewer"), ("rosa", "reviewer"),
                       ("mia", "member"), ("otto", "member")):  # fmt: skip
        people[name] = actor_for_user(
            create_user(session=session, name=name, password="correct horse battery", role=role)
        )
    add_member(session=session, app=app.id, user="mia")
    add_member(session=session, app=other.id, user="otto")
    return {"app": app.id, "version": version.id, "run_a": run_a, "run_b": run_b,
            "people": people}  # fmt: skip


def _spec(studio: dict[str, Any], **kw: Any) -> ReviewSpec:
    base: dict[str, Any] = {
        "name": "Tone check", "task": "Answer with the city", "good": "Names the city",
        "bad": "Anything else", "source_kind": "run", "source_id": studio["run_a"],
        "raters_per_item": 2,
    }  # fmt: skip
    return ReviewSpec(**{**base, **kw})


def _rate_all(review_id: int, who: Actor, answer: Any) -> int:
    """Rate every item the queue gives ``who``; ``answer(item)`` picks the rating."""
    given = 0
    with acting_as(who):
        while True:
            with session_scope() as s:
                item = next_item(session=s, review_id=review_id)
                if item is None:
                    return given
                rate(session=s, review_id=review_id, item_id=item.item_id, rating=answer(item))
                given += 1


def test_two_reviewers_rate_a_run_and_the_results_show_hit_rate_and_kappa(
    session: Session, studio: dict[str, Any]
) -> None:
    with acting_as(studio["people"]["mia"]):
        review = create_review(session=session, app_id=studio["app"], spec=_spec(studio))
    assert review.id is not None
    rita, ravi = studio["people"]["rita"], studio["people"]["ravi"]
    assert _rate_all(review.id, rita, lambda i: "good" if i.row_index % 2 else "bad") == 10
    # ravi agrees except on rows 0 and 1
    assert _rate_all(
        review.id, ravi, lambda i: ("good" if i.row_index % 2 else "bad") if i.row_index > 1
        else ("bad" if i.row_index % 2 else "good"),
    ) == 10  # fmt: skip
    assert _rate_all(review.id, studio["people"]["rosa"], lambda i: "good") == 0  # quota met
    with acting_as(studio["people"]["mia"]):
        results = review_results(session=session, review_id=review.id)
        found = progress(session=session, review_id=review.id)
        disputed = disagreements(session=session, review_id=review.id)
    assert found["given"] == found["needed"] == 20 and found["per_rater"] == {
        "ravi": 10,
        "rita": 10,
    }
    assert results["agreement"]["statistic"] == "Cohen's kappa"
    assert results["agreement"]["value"] == pytest.approx(0.6)  # 8 of 10 agree, p_e = 0.5
    assert "moderate" in results["agreement"]["sentence"]
    (contender,) = results["contenders"]
    assert contender["decided"] == 8 and contender["good"] == 4  # the two ties have no verdict
    assert "Wilson" in contender["sentence"]
    assert sorted(d["row_index"] for d in disputed) == [0, 1]
    with acting_as(studio["people"]["mia"]):
        settle(session=session, review_id=review.id, item_id=disputed[0]["item_id"], verdict="good")
        again = review_results(session=session, review_id=review.id)
        settled = disagreements(session=session, review_id=review.id)
    assert again["contenders"][0]["decided"] == 9
    assert {d["settled_by"] for d in settled} == {"mia", None}


def test_a_reviewer_resumes_at_the_next_unrated_item_and_skips_come_back_last(
    session: Session, studio: dict[str, Any]
) -> None:
    review = create_review(session=session, app_id=studio["app"], spec=_spec(studio))
    rita = studio["people"]["rita"]
    seen: list[int] = []
    with acting_as(rita):
        for answer in ("good", "skip", "bad"):
            with session_scope() as s:  # a fresh session each time: a reload, a new tab
                item = next_item(session=s, review_id=review.id or 0)
                assert item is not None
                seen.append(item.item_id)
                rate(session=s, review_id=review.id or 0, item_id=item.item_id, rating=answer)
        with session_scope() as s:
            resumed = next_item(session=s, review_id=review.id or 0)
        assert resumed is not None and resumed.item_id not in seen
        assert resumed.mine_done == 2
        with session_scope() as s:
            assert undo_last(session=s, review_id=review.id or 0) == seen[2]
            back = next_item(session=s, review_id=review.id or 0)
        assert back is not None and back.item_id == seen[2]  # undone: offered again first
        for _ in range(8):
            with session_scope() as s:
                item = next_item(session=s, review_id=review.id or 0)
                assert item is not None
                rate(session=s, review_id=review.id or 0, item_id=item.item_id, rating="good")
        with session_scope() as s:
            last = next_item(session=s, review_id=review.id or 0)
    assert last is not None and last.item_id == seen[1] and last.previous == "skip"


def test_the_same_rating_given_twice_at_once_is_one_rating(
    session: Session, studio: dict[str, Any]
) -> None:
    review = create_review(session=session, app_id=studio["app"], spec=_spec(studio))
    with acting_as(studio["people"]["rita"]):
        item = next_item(session=session, review_id=review.id or 0)
    assert item is not None
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def give(who: Actor, answer: str) -> None:
        try:
            with acting_as(who), session_scope() as s:
                start.wait()
                rate(session=s, review_id=review.id or 0, item_id=item.item_id, rating=answer)
        except BaseException as exc:
            errors.append(exc)

    people = studio["people"]
    threads = [
        threading.Thread(target=give, args=(people["rita"], "good")),
        threading.Thread(target=give, args=(people["rita"], "good")),
        threading.Thread(target=give, args=(people["ravi"], "bad")),
        threading.Thread(target=give, args=(people["ravi"], "bad")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with session_scope() as s:
        rows = s.exec(select(ReviewRating).where(ReviewRating.item_id == item.item_id)).all()
    assert sorted((r.rater, r.rating) for r in rows) == [("ravi", "bad"), ("rita", "good")]


def test_a_scale_review_gives_the_mean_rating_with_its_interval(
    session: Session, studio: dict[str, Any]
) -> None:
    with acting_as(studio["people"]["mia"]):
        review = create_review(
            session=session, app_id=studio["app"], spec=_spec(studio, kind="scale")
        )
    assert review.id is not None
    rita, ravi = studio["people"]["rita"], studio["people"]["ravi"]
    with acting_as(rita), session_scope() as s:
        first = next_item(session=s, review_id=review.id)
        assert first is not None
        with pytest.raises(StudioError, match=r"one of 1, 2, 3, 4, 5, skip \(not .7.\)"):
            rate(session=s, review_id=review.id, item_id=first.item_id, rating="7")
    assert _rate_all(review.id, rita, lambda i: "4") == 10
    # ravi gives 5 to even rows and 3 to odd ones: item means 4.5 and 3.5, overall 4.0
    assert _rate_all(review.id, ravi, lambda i: "3" if i.row_index % 2 else "5") == 10
    with acting_as(studio["people"]["mia"]):
        results = review_results(session=session, review_id=review.id)
    (contender,) = results["contenders"]
    assert contender["rated"] == 10 and contender["mean"]["estimate"] == pytest.approx(4.0)
    assert contender["mean"]["low"] < 4.0 < contender["mean"]["high"]
    assert "the mean rating is 4.00 of 5 over 10 items" in contender["sentence"]
    assert results["agreement"]["value"] is not None  # ordinal agreement of the two raters
    assert results["agreement"]["sentence"]


def test_three_raters_racing_for_two_places_give_two_ratings(
    session: Session, studio: dict[str, Any]
) -> None:
    review = create_review(session=session, app_id=studio["app"], spec=_spec(studio))
    assert review.raters_per_item == 2
    with acting_as(studio["people"]["rita"]):
        item = next_item(session=session, review_id=review.id or 0)
    assert item is not None
    start = threading.Barrier(3)
    refused: list[str] = []
    errors: list[BaseException] = []

    def give(who: Actor) -> None:
        try:
            with acting_as(who), session_scope() as s:
                start.wait()
                rate(session=s, review_id=review.id or 0, item_id=item.item_id, rating="good")
        except ConflictError as exc:
            refused.append(exc.message)
        except BaseException as exc:
            errors.append(exc)

    people = studio["people"]
    threads = [threading.Thread(target=give, args=(people[n],)) for n in ("rita", "ravi", "rosa")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert refused == ["This item already has all the ratings it needs."]
    with session_scope() as s:
        rows = s.exec(select(ReviewRating).where(ReviewRating.item_id == item.item_id)).all()
    assert len(rows) == 2


def test_a_blind_ab_review_hides_names_and_shuffles_sides(
    session: Session, studio: dict[str, Any]
) -> None:
    spec = _spec(studio, kind="pairwise", source_kind="comparison", source_id=0)
    from studio.services.evaluations import create_evaluation as make_eval

    evaluation = make_eval(
        session=session, app_id=studio["app"], name="two",
        run_ids=[studio["run_a"], studio["run_b"]], evaluators=[EvaluatorConfig(id="exact_match")],
    )  # fmt: skip
    spec = spec.model_copy(update={"source_kind": "evaluation", "source_id": evaluation.id})
    review = create_review(session=session, app_id=studio["app"], spec=spec)
    assert review.id is not None
    sides: list[bool] = []
    with acting_as(studio["people"]["rita"]):
        for _ in range(10):
            item = next_item(session=session, review_id=review.id)
            assert item is not None and item.contender is None and len(item.outputs) == 2
            capital_left = item.outputs[0].startswith("echo: Capital")
            sides.append(capital_left)
            # rita always prefers the "Capital ..." answer, wherever it is shown
            rate(session=session, review_id=review.id, item_id=item.item_id,
                 rating="left" if capital_left else "right")  # fmt: skip
    assert True in sides and False in sides  # shuffled per item
    review.raters_per_item = 1
    with acting_as(studio["people"]["mia"]):
        results = review_results(session=session, review_id=review.id)
    by_key = {c["key"]: c for c in results["contenders"]}
    assert by_key["B"]["wins"] == 10 and by_key["A"]["wins"] == 0
    assert "preferred in 10 of 10" in by_key["B"]["sentence"]


def test_a_judge_is_measured_against_the_people(session: Session, studio: dict[str, Any]) -> None:
    evaluation = create_evaluation(
        session=session, app_id=studio["app"], name="judge", run_ids=[studio["run_a"]],
        evaluators=[EvaluatorConfig(id="contains", options={"value": "City 1"})],
    )  # fmt: skip
    evaluate_sync(evaluation_id=evaluation.id or 0)
    review = create_review(
        session=session, app_id=studio["app"], spec=_spec(studio, raters_per_item=1)
    )
    # people call rows 1 and 7 good; the "judge" passes rows containing "City 1" (1 only)
    _rate_all(review.id or 0, studio["people"]["rita"],
              lambda i: "good" if i.row_index in (1, 7) else "bad")  # fmt: skip
    found = judge_vs_people(
        session=session, review_id=review.id or 0, evaluation_id=evaluation.id or 0,
        evaluator_key="contains",
    )  # fmt: skip
    assert found["items"] == 10 and found["percent"] == pytest.approx(0.9)
    assert [d["row_index"] for d in found["disagreements"]] == [7]
    assert found["confusion"] == [[8, 0], [1, 1]]  # rows: people (bad, good), columns: judge


def test_who_may_do_what(session: Session, studio: dict[str, Any]) -> None:
    people = studio["people"]
    with acting_as(people["otto"]), pytest.raises(NotFoundError):
        create_review(session=session, app_id=studio["app"], spec=_spec(studio))
    with acting_as(people["rita"]), pytest.raises(PermissionDeniedError, match="Reviewers"):
        create_review(session=session, app_id=studio["app"], spec=_spec(studio))
    named = create_review(
        session=session, app_id=studio["app"],
        spec=_spec(studio, name="Only Ravi", assignment="named", assignees=["ravi"]),
    )  # fmt: skip
    open_to_all = create_review(session=session, app_id=studio["app"], spec=_spec(studio))
    with acting_as(people["rita"]):
        assert [r.name for r in list_reviews(session=session)] == [open_to_all.name]
        with pytest.raises(NotFoundError):
            next_item(session=session, review_id=named.id or 0)
        with pytest.raises(PermissionDeniedError, match="Reviewers cannot"):  # the app's people's
            review_results(session=session, review_id=open_to_all.id or 0)
    with acting_as(people["ravi"]):
        assert {r.name for r in list_reviews(session=session)} == {"Only Ravi", "Tone check"}
    with acting_as(people["otto"]):
        assert list_reviews(session=session) == []
    with pytest.raises(PermissionDeniedError, match="signed-in person"):  # the operator
        next_item(session=session, review_id=open_to_all.id or 0)


def test_a_split_review_gives_each_item_to_its_raters_and_a_seeded_sample_repeats(
    session: Session, studio: dict[str, Any]
) -> None:
    spec = _spec(studio, assignment="split", assignees=["rita", "ravi", "rosa"],
                 raters_per_item=1, sample_size=6, seed=7)  # fmt: skip
    first = create_review(session=session, app_id=studio["app"], spec=spec)
    second = create_review(session=session, app_id=studio["app"], spec=spec)
    counts = {
        name: _rate_all(first.id or 0, studio["people"][name], lambda i: "good")
        for name in ("rita", "ravi", "rosa")
    }
    assert counts == {"rita": 2, "ravi": 2, "rosa": 2}
    from studio.store.tables import ReviewItem

    def rows(review_id: int) -> list[int | None]:
        stmt = select(ReviewItem.row_index).where(ReviewItem.review_id == review_id)
        return sorted(session.exec(stmt).all())  # type: ignore[type-var]

    assert rows(first.id or 0) == rows(second.id or 0) and len(rows(first.id or 0)) == 6


def test_bad_reviews_and_ratings_are_refused_with_a_sentence(
    session: Session, studio: dict[str, Any]
) -> None:
    with pytest.raises(NotFoundError, match="No run 999"):
        create_review(session=session, app_id=studio["app"], spec=_spec(studio, source_id=999))
    with pytest.raises(Exception, match="two or more"):
        create_review(session=session, app_id=studio["app"], spec=_spec(studio, kind="pairwise"))
    with pytest.raises(NotFoundError, match="No active user 'nobody'"):
        create_review(
            session=session, app_id=studio["app"],
            spec=_spec(studio, assignment="named", assignees=["nobody"]),
        )  # fmt: skip
    review = create_review(session=session, app_id=studio["app"], spec=_spec(studio))
    with acting_as(studio["people"]["rita"]):
        item = next_item(session=session, review_id=review.id or 0)
        assert item is not None
        with pytest.raises(Exception, match="one of good, bad, skip"):
            rate(session=session, review_id=review.id or 0, item_id=item.item_id, rating="meh")
    total = session.exec(select(func.count()).select_from(ReviewRating)).one()
    assert total == 0
    with pytest.raises(ConflictError):  # nothing to review in an empty run
        from studio.store.tables import RunResult

        for r in session.exec(select(RunResult).where(RunResult.run_id == studio["run_b"])).all():
            session.delete(r)
        session.commit()
        create_review(
            session=session, app_id=studio["app"], spec=_spec(studio, source_id=studio["run_b"])
        )


def test_an_endpoints_logged_requests_become_a_review(
    session: Session, studio: dict[str, Any]
) -> None:
    import json

    from studio.store.tables import Endpoint, RequestLog

    endpoint = Endpoint(app_id=studio["app"], name="capitals")
    session.add(endpoint)
    session.commit()
    route = "POST /v1/endpoints/capitals/generate"
    bodies = [
        (json.dumps({"inputs": {"city": f"City {i}"}}), json.dumps({"output": f"Answer {i}"}), 200)
        for i in range(5)
    ]
    bodies += [
        ('{"inputs": {"city": "cut', "[truncated]", 200),  # a body cut short: left out
        (json.dumps({"inputs": {"city": "x"}}), json.dumps({"error": "x"}), 500),  # failed
        ("[redacted]", "[redacted]", 200),
    ]
    for n, (request, response, status) in enumerate(bodies):
        session.add(
            RequestLog(request_id=f"r{n}", endpoint_id=endpoint.id, app_id=studio["app"],
                       route=route, status_code=status, latency_ms=5.0,
                       request_body=request, response_body=response)
        )  # fmt: skip
    session.commit()
    review = create_review(
        session=session, app_id=studio["app"],
        spec=_spec(studio, source_kind="endpoint", source_id=endpoint.id, sample_size=3,
                   raters_per_item=1, item_order="source"),
    )  # fmt: skip
    with acting_as(studio["people"]["rita"]):
        first = next_item(session=session, review_id=review.id or 0)
    assert first is not None
    assert first.outputs == ["Answer 2"] and first.inputs["city"] == "City 2"  # last three
    assert first.contender == "endpoint capitals" and first.mine_left == 3


def test_a_blind_ab_review_of_a_three_way_comparison_ranks_the_contenders(
    session: Session, studio: dict[str, Any]
) -> None:
    """Items from a comparison of three prompts: each item is one pair (A-B, A-C, B-C in
    turn), shown without names, and the Bradley-Terry ranking orders them as the rater did."""
    from studio.services.comparisons import ContenderSpec, create_comparison

    templates = {"Alpha": "{{city}}", "Beta": "Capital {{city}}", "Gamma": "The capital {{city}}"}
    comparison, missing = create_comparison(
        session=session, app_id=studio["app"], dataset_version_id=studio["version"],
        contenders=[
            ContenderSpec(model="mock/echo", label=label,
                          prompt=PromptTemplate(kind="completion", template=template))
            for label, template in templates.items()
        ],
    )  # fmt: skip
    for run_id in missing:
        run_sync(run_id=run_id)
    # Alpha and Beta reuse the finished runs of the same prompts: one run is new
    assert comparison.id is not None and len(missing) == 1
    spec = _spec(studio, kind="pairwise", source_kind="comparison", source_id=comparison.id,
                 raters_per_item=1)  # fmt: skip
    review = create_review(session=session, app_id=studio["app"], spec=spec)
    assert review.id is not None

    def liking(output: str) -> int:  # the rater's taste: Gamma > Beta > Alpha
        return 3 if output.startswith("echo: The capital") else 2 if "Capital" in output else 1

    shown_pairs: set[frozenset[int]] = set()
    with acting_as(studio["people"]["rita"]):
        for _ in range(10):
            item = next_item(session=session, review_id=review.id)
            assert item is not None and item.contender is None and len(item.outputs) == 2
            page_text = " ".join([*item.outputs, str(item.inputs)])
            assert not any(label in page_text for label in templates)  # blind
            left, right = (liking(o) for o in item.outputs)
            shown_pairs.add(frozenset((left, right)))
            rate(session=session, review_id=review.id, item_id=item.item_id,
                 rating="left" if left > right else "right")  # fmt: skip
        assert next_item(session=session, review_id=review.id) is None
    assert shown_pairs == {frozenset((1, 2)), frozenset((1, 3)), frozenset((2, 3))}

    with acting_as(studio["people"]["mia"]):
        results = review_results(session=session, review_id=review.id)
    assert [r["label"] for r in results["ranking"]] == ["Gamma", "Beta", "Alpha"]
    wins = {c["label"]: (c["wins"], c["judged"]) for c in results["contenders"]}
    # 10 rows over 3 pairs: Alpha-Beta 4 times, Alpha-Gamma and Beta-Gamma 3 times each
    assert wins == {"Alpha": (0, 7), "Beta": (4, 7), "Gamma": (6, 6)}
