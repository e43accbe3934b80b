"""retrieval in variants: the step on a variant version, the chunks each run row and
each endpoint request used (issue 17)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("variantversion") as batch:
        batch.add_column(
            sa.Column("retrieval", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("runresult") as batch:
        batch.add_column(sa.Column("retrieval", sa.JSON(), nullable=True))
    with op.batch_alter_table("requestlog") as batch:
        batch.add_column(sa.Column("retrieval", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("requestlog", "runresult", "variantversion"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("retrieval")
