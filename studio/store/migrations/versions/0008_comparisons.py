"""comparisons: contenders side by side, and per-row preferences (issue 14)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_str = sqlmodel.sql.sqltypes.AutoString
_when = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "comparison",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("app.id"), nullable=False),
        sa.Column("name", _str(), nullable=False),
        sa.Column(
            "dataset_version_id", sa.Integer(), sa.ForeignKey("datasetversion.id"), nullable=False
        ),
        sa.Column("contenders", sa.JSON(), nullable=False),
        sa.Column("baseline", _str(length=10), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), sa.ForeignKey("evaluation.id"), nullable=True),
        sa.Column("actor", _str(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
    )
    op.create_index("ix_comparison_app_id", "comparison", ["app_id"])
    op.create_table(
        "comparisonpreference",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "comparison_id", sa.Integer(), sa.ForeignKey("comparison.id"), nullable=False
        ),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("winner", _str(length=10), nullable=False),
        sa.Column("shown", sa.JSON(), nullable=False),
        sa.Column("blind", sa.Boolean(), nullable=False),
        sa.Column("rater", _str(length=200), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.UniqueConstraint("comparison_id", "row_index", "rater"),
    )
    op.create_index(
        "ix_comparisonpreference_comparison_id", "comparisonpreference", ["comparison_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_comparisonpreference_comparison_id", table_name="comparisonpreference")
    op.drop_table("comparisonpreference")
    op.drop_index("ix_comparison_app_id", table_name="comparison")
    op.drop_table("comparison")
