"""key rate windows: per-key request counts per minute, shared by gateway workers (issue 15)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 01:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyratewindow",
        sa.Column(
            "key_id",
            sa.Integer(),
            sa.ForeignKey("apikey.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("window_start", sa.BigInteger(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("keyratewindow")
