"""Who sees and changes what (issue 15): members see only their apps, reviewers and
anonymous callers nothing, administrators everything; model-layer writes need an
administrator. The services read the caller from the current actor, as every face sets it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import Session

from studio.core.errors import NotFoundError, PermissionDeniedError
from studio.core.identity import ANONYMOUS, Actor, acting_as
from studio.core.templates import PromptTemplate
from studio.models import registry
from studio.models.connections import ConnectionCreate, add_connection, list_connections
from studio.models.specs import ModelCreate, TemplateCreate
from studio.models.usage import set_price
from studio.services import endpoints
from studio.services.apps import create_app, get_app, list_apps
from studio.services.datasets import get_version, list_datasets, upload_dataset
from studio.services.evaluations import (
    EvaluatorConfig,
    create_evaluation,
    get_evaluation,
    list_evaluations,
)
from studio.services.jobs import enqueue_run, get_job, list_jobs, wait_job
from studio.services.members import add_member, app_members, remove_member
from studio.services.monitoring import get_request, list_requests
from studio.services.run_results import get_run, list_runs
from studio.services.runs import RunConfig, create_run, list_results
from studio.services.users import actor_for_user, create_user
from studio.services.variants import VariantConfig, create_variant, list_variants
from studio.store.tables import Job, RequestLog

PASSWORD = "correct horse battery"


@dataclass
class World:
    """Two apps with a dataset, a variant, a run, an evaluation, a job and an endpoint
    each; mia is a member of "Mine" only."""

    mine: int
    theirs: int
    runs: dict[int, int]
    versions: dict[int, int]
    evaluations: dict[int, int]
    jobs: dict[int, int]
    endpoints: dict[int, str]
    mia: Actor
    rex: Actor
    ada: Actor


def _fill(session: Session, name: str) -> tuple[int, int, int, int, int, str]:
    app = create_app(session=session, name=name)
    assert app.id is not None
    version = upload_dataset(
        session=session,
        app_id=app.id,
        name="events",
        data=b"event\nLaunch\nSale\n",
        filename="e.csv",
    )
    assert version.id is not None
    config = VariantConfig(model="mock/echo", prompt=PromptTemplate.completion("About {{event}}"))
    create_variant(session=session, app_id=app.id, name="plain", config=config)
    run = create_run(
        session=session,
        app_id=app.id,
        dataset_version_id=version.id,
        config=RunConfig(model="mock/echo", prompt=config.prompt),
    )
    assert run.id is not None
    evaluation = create_evaluation(
        session=session,
        app_id=app.id,
        run_ids=[run.id],
        evaluators=[EvaluatorConfig(id="exact_match")],
    )
    job = Job(kind="run", subject_id=run.id, app_id=app.id, actor="test", state="succeeded")
    session.add(job)
    endpoint = endpoints.deploy(session=session, app=app.id, variant="plain")
    session.commit()
    assert evaluation.id is not None and job.id is not None
    return app.id, version.id, run.id, evaluation.id, job.id, endpoint.name


@pytest.fixture
def world(session: Session, mock_provider: object) -> World:
    mine = _fill(session, "Mine")
    theirs = _fill(session, "Theirs")
    mia = create_user(session=session, name="mia", password=PASSWORD, role="member")
    rex = create_user(session=session, name="rex", password=PASSWORD, role="reviewer")
    ada = create_user(session=session, name="ada", password=PASSWORD, role="admin")
    add_member(session=session, app="Mine", user="mia")
    ids = {mine[0]: mine, theirs[0]: theirs}
    return World(
        mine=mine[0],
        theirs=theirs[0],
        versions={a: v[1] for a, v in ids.items()},
        runs={a: v[2] for a, v in ids.items()},
        evaluations={a: v[3] for a, v in ids.items()},
        jobs={a: v[4] for a, v in ids.items()},
        endpoints={a: v[5] for a, v in ids.items()},
        mia=actor_for_user(mia),
        rex=actor_for_user(rex),
        ada=actor_for_user(ada),
    )


def test_a_member_sees_only_their_apps(session: Session, world: World) -> None:
    with acting_as(world.mia):
        assert [a.name for a in list_apps(session=session)] == ["Mine"]
        assert len(list_datasets(session=session, app_id=world.mine)) == 1
        assert [r.id for r in list_runs(session=session, app_id=world.mine)] == [
            world.runs[world.mine]
        ]
        assert [e.id for e in list_evaluations(session=session, app_id=None)] == [
            world.evaluations[world.mine]
        ]
        assert [j.id for j in list_jobs()] == [world.jobs[world.mine]]
        assert [e.name for e in endpoints.list_endpoints(session=session)] == [
            world.endpoints[world.mine]
        ]
        other = world.theirs
        hidden = [
            lambda: get_app(session=session, ref="Theirs"),
            lambda: list_datasets(session=session, app_id=other),
            lambda: get_version(session=session, version_id=world.versions[other]),
            lambda: list_variants(session=session, app_id=other),
            lambda: list_runs(session=session, app_id=other),
            lambda: get_run(session=session, run_id=world.runs[other]),
            lambda: list_results(session=session, run_id=world.runs[other]),
            lambda: get_evaluation(session=session, evaluation_id=world.evaluations[other]),
            lambda: list_evaluations(session=session, app_id=other),
            lambda: get_job(job_id=world.jobs[other]),
            lambda: endpoints.get_endpoint(session=session, name=world.endpoints[other]),
            lambda: endpoints.undeploy(session=session, name=world.endpoints[other]),
        ]
        for call in hidden:
            with pytest.raises(NotFoundError, match="not a member of"):
                call()


def test_an_administrator_sees_every_app(session: Session, world: World) -> None:
    with acting_as(world.ada):
        assert sorted(a.name for a in list_apps(session=session)) == ["Mine", "Theirs"]
        assert len(list_evaluations(session=session, app_id=None)) == 2
        assert len(list_jobs()) == 2
        assert len(endpoints.list_endpoints(session=session)) == 2
        assert get_run(session=session, run_id=world.runs[world.theirs]).app_id == world.theirs


def test_a_member_cannot_change_connections_templates_prices_or_models(
    session: Session, world: World
) -> None:
    template = TemplateCreate(name="t", model_type="EMBEDDING", runtime="sentence-transformers")
    changes = {
        "add connections": lambda: add_connection(
            session=session,
            data=ConnectionCreate(name="x", kind="openai", base_url="http://x.invalid"),
        ),
        "create model templates": lambda: registry.create_template(session=session, data=template),
        "set prices": lambda: set_price(
            session=session, model="mock/echo", input_per_mtok=1, output_per_mtok=2
        ),
        "create models": lambda: registry.create_model(
            session=session,
            data=ModelCreate(
                name="m", connection="mock", provider_model="echo", model_type="COMPLETION"
            ),
        ),
        "delete models": lambda: registry.delete_model(session=session, ref="mock/echo"),
    }
    with acting_as(world.mia):
        for action, change in changes.items():
            with pytest.raises(PermissionDeniedError) as refused:
                change()
            assert str(refused.value).startswith(f"Only administrators can {action}.")
        # ... but may read models and connections (the Playground)
        assert any(m.name.startswith("builtin/") for m in registry.model_overview(session=session))
        assert "mock" in [c.name for c in list_connections(session=session)]


def test_a_reviewer_is_refused_everywhere_with_a_sentence(session: Session, world: World) -> None:
    calls = [
        lambda: list_apps(session=session),
        lambda: create_app(session=session, name="Mine too"),
        lambda: list_datasets(session=session, app_id=world.mine),
        lambda: list_runs(session=session, app_id=world.mine),
        lambda: list_evaluations(session=session, app_id=None),
        lambda: list_jobs(),
        lambda: endpoints.list_endpoints(session=session),
        lambda: list_requests(session=session),
        lambda: registry.model_overview(session=session),
        lambda: list_connections(session=session),
    ]
    with acting_as(world.rex):
        for call in calls:
            with pytest.raises(PermissionDeniedError) as refused:
                call()
            message = str(refused.value)
            assert message.startswith(("Reviewers cannot", "Only administrators or members"))
            assert message.rstrip().endswith(".") and "Traceback" not in message


def test_the_old_studio_admin_variable_grants_nothing(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STUDIO_ADMIN once made the browser an administrator; the admin role replaced it."""
    monkeypatch.setenv("STUDIO_ADMIN", "1")
    data = ConnectionCreate(name="x", kind="openai", base_url="http://x.invalid")
    with acting_as(world.mia), pytest.raises(PermissionDeniedError, match=r"^Only administrators"):
        add_connection(session=session, data=data)
    with acting_as(ANONYMOUS), pytest.raises(PermissionDeniedError, match=r"^Sign in"):
        add_connection(session=session, data=data)
    assert "x" not in [c.name for c in list_connections(session=session)]


def test_nobody_signed_in_may_do_nothing(session: Session, world: World) -> None:
    with acting_as(ANONYMOUS):
        with pytest.raises(PermissionDeniedError, match=r"^Sign in to list apps\."):
            list_apps(session=session)
        with pytest.raises(PermissionDeniedError, match=r"^Sign in to list endpoints\."):
            endpoints.list_endpoints(session=session)
        with pytest.raises(PermissionDeniedError, match="Sign in"):
            registry.model_overview(session=session)


def test_adding_and_removing_a_member_changes_what_they_see(session: Session, world: World) -> None:
    add_member(session=session, app="Theirs", user="mia")
    with acting_as(world.mia):
        assert sorted(a.name for a in list_apps(session=session)) == ["Mine", "Theirs"]
        assert get_run(session=session, run_id=world.runs[world.theirs]).id is not None
    assert app_members(session=session, app="Theirs") == ["mia"]
    remove_member(session=session, app="Theirs", user="mia")
    with acting_as(world.mia):
        assert [a.name for a in list_apps(session=session)] == ["Mine"]
        with pytest.raises(NotFoundError):
            get_run(session=session, run_id=world.runs[world.theirs])
    with acting_as(world.mia), pytest.raises(PermissionDeniedError, match="administrators"):
        add_member(session=session, app="Theirs", user="mia")


def test_the_person_who_creates_an_app_becomes_its_member(session: Session, world: World) -> None:
    with acting_as(world.mia):
        made = create_app(session=session, name="Newsletter")
        session.commit()
        assert sorted(a.name for a in list_apps(session=session)) == ["Mine", "Newsletter"]
        assert app_members(session=session, app=made.name) == ["mia"]


def test_an_app_key_uses_its_own_app_and_is_refused_another(session: Session, world: World) -> None:
    key = Actor(
        kind="key", name="API key 1", key_id=1, app_id=world.mine, scopes=frozenset({"invoke"})
    )
    with acting_as(key):
        assert [e.name for e in endpoints.list_endpoints(session=session)] == [
            world.endpoints[world.mine]
        ]
        with pytest.raises(PermissionDeniedError, match="another app"):
            endpoints.get_endpoint(session=session, name=world.endpoints[world.theirs])
        with pytest.raises(PermissionDeniedError, match="Only administrators or members"):
            create_app(session=session, name="By a key")


def test_an_in_process_job_started_by_a_member_completes(session: Session, world: World) -> None:
    """The job's thread acts as the member who started it (without the context copy it
    would be nobody, and nobody may read the dataset)."""
    with acting_as(world.mia):
        run = create_run(
            session=session,
            app_id=world.mine,
            dataset_version_id=world.versions[world.mine],
            config=RunConfig(
                model="mock/echo", prompt=PromptTemplate.completion("About {{event}}")
            ),
        )
        session.commit()
        assert run.id is not None
        job = enqueue_run(run_id=run.id, actor="mia")
        done = wait_job(job_id=job.id, timeout=60)
        assert (done.state, done.error, done.done) == ("succeeded", None, 2)
        assert len(list_results(session=session, run_id=run.id)) == 2


def test_a_member_reads_only_their_apps_traffic(session: Session, world: World) -> None:
    ids = {
        a: endpoints.get_endpoint(session=session, name=n).id for a, n in world.endpoints.items()
    }
    for app_id, endpoint_id in ids.items():
        session.add(
            RequestLog(
                request_id=f"req-{app_id}", endpoint_id=endpoint_id, app_id=app_id,
                status_code=200, latency_ms=5.0, request_body='{"inputs": {"event": "x"}}',
            )
        )  # fmt: skip
    session.add(RequestLog(request_id="raw", model="mock/echo", status_code=200, latency_ms=1.0))
    session.commit()
    with acting_as(world.mia):
        assert [r.request_id for r in list_requests(session=session)] == [f"req-{world.mine}"]
        with pytest.raises(NotFoundError):
            get_request(session=session, request_id=f"req-{world.theirs}")
        with pytest.raises(NotFoundError):
            get_request(session=session, request_id="raw")  # raw model traffic: admins only
    with acting_as(world.ada):
        assert len(list_requests(session=session)) == 3
