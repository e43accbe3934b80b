"""human review: reviews, their items, ratings and settled verdicts (issue 16)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "humanreview",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("app.id", ondelete="CASCADE")),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("raters_per_item", sa.Integer(), nullable=False),
        sa.Column("assignment", sa.String(length=20), nullable=False),
        sa.Column("assignees", sa.JSON(), nullable=False),
        sa.Column("item_order", sa.String(length=20), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=True),
        sa.Column("source_kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("contenders", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_humanreview_app_id", "humanreview", ["app_id"])
    op.create_table(
        "reviewitem",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("review_id", sa.Integer(), sa.ForeignKey("humanreview.id", ondelete="CASCADE")),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("swapped", sa.Boolean(), nullable=False),
        sa.Column("assigned", sa.JSON(), nullable=False),
    )
    op.create_index("ix_reviewitem_review_position", "reviewitem", ["review_id", "position"])
    op.create_table(
        "reviewrating",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("review_id", sa.Integer(), sa.ForeignKey("humanreview.id", ondelete="CASCADE")),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("reviewitem.id", ondelete="CASCADE")),
        sa.Column("rater", sa.String(length=200), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=True),
        sa.Column("rating", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("item_id", "rater"),
    )
    op.create_index("ix_reviewrating_item_id", "reviewrating", ["item_id"])
    op.create_index("ix_reviewrating_review_rater", "reviewrating", ["review_id", "rater"])
    op.create_table(
        "reviewverdict",
        sa.Column(
            "item_id",
            sa.Integer(),
            sa.ForeignKey("reviewitem.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("settled_by", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("settled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_reviewverdict_review_id", "reviewverdict", ["review_id"])


def downgrade() -> None:
    op.drop_table("reviewverdict")
    op.drop_table("reviewrating")
    op.drop_table("reviewitem")
    op.drop_table("humanreview")
