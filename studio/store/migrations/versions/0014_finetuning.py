"""fine-tuning: per-step losses and log lines of a fine-tuning job, and the lineage of the
model it made (issue 18). The job itself is a ``job`` row of kind ``finetuning``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 11:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_STR = sqlmodel.sql.sqltypes.AutoString
_AT = sqlmodel.sql.sqltypes.UTCDateTime


def _job_id() -> sa.Column:
    return sa.Column("job_id", sa.Integer(), sa.ForeignKey("job.id", ondelete="CASCADE"))


def upgrade() -> None:
    op.create_table(
        "finetunemetric",
        sa.Column("id", sa.Integer(), primary_key=True),
        _job_id(),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Float(), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=True),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.Column("at", _AT(), nullable=False),
        sa.UniqueConstraint("job_id", "step"),
    )
    op.create_index("ix_finetunemetric_job_id", "finetunemetric", ["job_id"])
    op.create_table(
        "finetunelog",
        sa.Column("id", sa.Integer(), primary_key=True),
        _job_id(),
        sa.Column("level", _STR(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", _AT(), nullable=False),
    )
    op.create_index("ix_finetunelog_job_id", "finetunelog", ["job_id"])
    op.create_table(
        "finetunedmodel",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("job.id", ondelete="CASCADE"), unique=True),
        sa.Column(
            "model_id",
            sa.String(36),
            sa.ForeignKey("model.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("app_id", sa.Integer(), nullable=True),
        sa.Column("base_model", _STR(length=300), nullable=False),
        sa.Column(
            "dataset_version_id", sa.Integer(), sa.ForeignKey("datasetversion.id"), nullable=False
        ),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("final_train_loss", sa.Float(), nullable=True),
        sa.Column("final_val_loss", sa.Float(), nullable=True),
        sa.Column("artifact", _STR(length=1000), nullable=True),
        sa.Column("created_at", _AT(), nullable=False),
    )
    op.create_index("ix_finetunedmodel_model_id", "finetunedmodel", ["model_id"])
    op.create_index("ix_finetunedmodel_app_id", "finetunedmodel", ["app_id"])


def downgrade() -> None:
    op.drop_table("finetunedmodel")
    op.drop_table("finetunelog")
    op.drop_table("finetunemetric")
