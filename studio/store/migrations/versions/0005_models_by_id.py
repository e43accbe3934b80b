"""models by id: variant versions and runs reference a stored model by its id

Renaming a model used to break the variants and endpoints that named it. A
variant version gets ``model_id`` next to its model name, filled here from the
current names: a name that is a stored (non built-in) model gets that model's
id. Built-in and ``connection/model`` names keep their name as the reference.
Runs keep their configuration in a JSON column; ``model_id`` is added to it the
same way (in Python, so it works alike on SQLite and PostgreSQL), so runs made
before the upgrade can still be resumed after a rename.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


_model = sa.table(
    "model",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("is_builtin", sa.Boolean),
)
_version = sa.table(
    "variantversion", sa.column("model", sa.String), sa.column("model_id", sa.String)
)
_run = sa.table(
    "run",
    sa.column("id", sa.Integer),
    sa.column("model", sa.String),
    sa.column("config", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("variantversion") as batch_op:
        batch_op.add_column(sa.Column("model_id", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_variantversion_model_id", ["model_id"], unique=False)

    conn = op.get_bind()
    ids = {
        name: model_id
        for model_id, name in conn.execute(
            sa.select(_model.c.id, _model.c.name).where(_model.c.is_builtin == sa.false())
        )
    }
    for name, model_id in ids.items():
        conn.execute(_version.update().where(_version.c.model == name).values(model_id=model_id))
    if not ids:
        return
    runs = conn.execute(
        sa.select(_run.c.id, _run.c.config).where(_run.c.model.in_(list(ids)))
    ).all()
    for run_id, config in runs:
        if not isinstance(config, dict) or config.get("model_id"):
            continue
        model_id = ids.get(config.get("model"))
        if model_id is None:
            continue
        conn.execute(
            _run.update().where(_run.c.id == run_id).values(config={**config, "model_id": model_id})
        )


def downgrade() -> None:
    # Names stay current (renames update them), so dropping the ids loses no reference
    # the old code could use; run configurations keep an extra key the old code ignores.
    with op.batch_alter_table("variantversion") as batch_op:
        batch_op.drop_index("ix_variantversion_model_id")
        batch_op.drop_column("model_id")
