"""evaluations: runs scored by evaluators, one verdict per output (issue 13)

The initial schema had placeholder ``evaluation``, ``evaluationrun`` and
``evaluationscore`` tables that nothing ever wrote; they are replaced by the
tables the evaluation engine uses (a row that somehow exists would stop the
migration rather than be dropped silently).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_str = sqlmodel.sql.sqltypes.AutoString


def _drop_placeholders() -> None:
    conn = op.get_bind()
    present = set(sa.inspect(conn).get_table_names())
    for table in ("evaluationscore", "evaluationrun", "evaluation"):
        if table not in present:
            continue
        if conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar():
            raise RuntimeError(f"table {table} holds rows; migrate them by hand before 0007")
    for table in ("evaluationscore", "evaluationrun", "evaluation"):  # indexes go with them
        if table in present:
            op.drop_table(table)


def upgrade() -> None:
    _drop_placeholders()
    op.create_table(
        "evaluation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("app.id"), nullable=False),
        sa.Column("name", _str(), nullable=False),
        sa.Column(
            "dataset_version_id", sa.Integer(), sa.ForeignKey("datasetversion.id"), nullable=False
        ),
        sa.Column("contenders", sa.JSON(), nullable=False),
        sa.Column("evaluators", sa.JSON(), nullable=False),
        sa.Column("status", _str(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("actor", _str(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_evaluation_app_id", "evaluation", ["app_id"])
    op.create_index("ix_evaluation_dataset_version_id", "evaluation", ["dataset_version_id"])
    op.create_table(
        "evaluationscore",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("evaluation_id", sa.Integer(), sa.ForeignKey("evaluation.id"), nullable=False),
        sa.Column("evaluator_key", _str(length=100), nullable=False),
        sa.Column("evaluator_version", _str(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("run.id"), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("sample_index", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "evaluation_id", "evaluator_key", "run_id", "row_index", "sample_index"
        ),
    )
    op.create_index("ix_evaluationscore_evaluation_id", "evaluationscore", ["evaluation_id"])


def downgrade() -> None:
    op.drop_index("ix_evaluationscore_evaluation_id", table_name="evaluationscore")
    op.drop_table("evaluationscore")
    op.drop_index("ix_evaluation_dataset_version_id", table_name="evaluation")
    op.drop_index("ix_evaluation_app_id", table_name="evaluation")
    op.drop_table("evaluation")
    # the placeholders of 0001 come back, so 0001's own downgrade finds what it drops
    op.create_table(
        "evaluation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("app.id"), nullable=False),
        sa.Column("name", _str(), nullable=False),
        sa.Column("kind", _str(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", _str(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_evaluation_app_id", "evaluation", ["app_id"])
    op.create_table(
        "evaluationrun",
        sa.Column("evaluation_id", sa.Integer(), sa.ForeignKey("evaluation.id"), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("run.id"), primary_key=True),
    )
    op.create_table(
        "evaluationscore",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("evaluation_id", sa.Integer(), sa.ForeignKey("evaluation.id"), nullable=False),
        sa.Column("run_result_id", sa.Integer(), sa.ForeignKey("runresult.id"), nullable=False),
        sa.Column("evaluator", _str(), nullable=False),
        sa.Column("rater", _str(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("label", _str(), nullable=True),
        sa.Column("comment", _str(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_evaluationscore_evaluation_id", "evaluationscore", ["evaluation_id"])
    op.create_index("ix_evaluationscore_run_result_id", "evaluationscore", ["run_result_id"])
