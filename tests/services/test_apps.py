"""Apps: create, find, rename, describe, archive, and the apps list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from studio.core.errors import ConflictError, NotFoundError, RequestValidationError
from studio.services import apps
from studio.services.datasets import upload_dataset
from studio.store.tables import Run, Variant, VariantVersion

CSV = b"question,answer\nWhat is 2+2?,4\nCapital of France?,Paris\n"


def test_create_and_get_by_id_or_name(session: Session) -> None:
    app = apps.create_app(session=session, name="  Marketing emails ", description="Q3 launch")
    assert app.id is not None
    assert app.name == "Marketing emails"
    assert apps.get_app(session=session, ref=app.id).name == "Marketing emails"
    assert apps.get_app(session=session, ref="Marketing emails").id == app.id
    assert apps.get_app(session=session, ref=str(app.id)).id == app.id
    with pytest.raises(NotFoundError, match="No app 'nope'"):
        apps.get_app(session=session, ref="nope")


def test_duplicate_and_invalid_names_are_refused(session: Session) -> None:
    apps.create_app(session=session, name="Support bot")
    with pytest.raises(ConflictError, match="An app named 'Support bot' already exists"):
        apps.create_app(session=session, name="Support bot ")
    with pytest.raises(RequestValidationError, match="name: must not be empty"):
        apps.create_app(session=session, name="   ")
    with pytest.raises(RequestValidationError, match="at most 200 characters"):
        apps.create_app(session=session, name="x" * 201)
    other = apps.create_app(session=session, name="Other")
    with pytest.raises(ConflictError, match="already exists"):
        apps.rename_app(session=session, ref=other.id or 0, name="Support bot")


def test_rename_describe_and_archive(session: Session) -> None:
    app = apps.create_app(session=session, name="Draft")
    before = app.updated_at
    renamed = apps.rename_app(session=session, ref="Draft", name="Release notes")
    assert renamed.name == "Release notes" and renamed.updated_at >= before
    apps.describe_app(session=session, ref=renamed.id or 0, description="Writes release notes")
    assert apps.get_app(session=session, ref="Release notes").description == (
        "Writes release notes"
    )

    apps.archive_app(session=session, ref="Release notes")
    assert [s.name for s in apps.list_apps(session=session)] == []
    listed = apps.list_apps(session=session, include_archived=True)
    assert [(s.name, s.archived) for s in listed] == [("Release notes", True)]
    # archived apps can still be found (to restore them)
    apps.archive_app(session=session, ref="Release notes", archived=False)
    assert [s.name for s in apps.list_apps(session=session)] == ["Release notes"]


def test_list_counts_and_orders_by_latest_activity(session: Session) -> None:
    older = apps.create_app(session=session, name="Older")
    newer = apps.create_app(session=session, name="Newer")
    empty = apps.create_app(session=session, name="Empty")
    assert older.id and newer.id and empty.id
    # app timestamps a while ago, distinct and in a known order
    base = older.created_at - timedelta(minutes=10)
    for i, app in enumerate((older, newer, empty)):
        app.created_at = app.updated_at = base + timedelta(seconds=i)
        session.add(app)
    session.flush()

    version = upload_dataset(
        session=session, app_id=older.id, name="questions", data=CSV, filename="q.csv"
    )
    upload_dataset(session=session, app_id=older.id, name="questions", data=CSV, filename="q.csv")
    upload_dataset(session=session, app_id=older.id, name="more", data=CSV, filename="m.csv")
    variant = Variant(app_id=older.id, name="v")
    session.add(variant)
    session.flush()
    session.add(VariantVersion(variant_id=variant.id or 0, version=1, model="mock/echo"))
    session.add(Run(app_id=older.id, dataset_version_id=version.id or 0, model="mock/echo"))
    session.flush()

    summaries = apps.list_apps(session=session)
    # "Older" has the newest activity (uploads, variant, run) so it comes first
    assert [s.name for s in summaries] == ["Older", "Empty", "Newer"]
    first = summaries[0]
    assert (first.variants, first.datasets, first.runs) == (1, 2, 1)
    assert (summaries[1].variants, summaries[1].datasets, summaries[1].runs) == (0, 0, 0)
    assert first.last_activity >= summaries[1].last_activity
