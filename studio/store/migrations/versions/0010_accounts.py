"""accounts: users, browser sessions, app members, sign-in throttles, audit log, key scopes

Existing app keys get the ``invoke`` scope; existing administrative keys get
``invoke,models,manage`` (what they could do before).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 05:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studiouser",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_sign_in_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_studiouser_name", "studiouser", ["name"], unique=True)
    op.create_table(
        "usersession",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("studiouser.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=128), nullable=False, unique=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
    )
    op.create_index("ix_usersession_user_id", "usersession", ["user_id"])
    op.create_table(
        "appmember",
        sa.Column(
            "app_id", sa.Integer(), sa.ForeignKey("app.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("studiouser.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("added_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_table(
        "signinthrottle",
        sa.Column("subject", sa.String(length=200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("locked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "auditevent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target_kind", sa.String(length=40), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=False),
        sa.Column("target_name", sa.String(length=300), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_auditevent_at", "auditevent", ["at"])
    op.create_index("ix_auditevent_actor_user_id", "auditevent", ["actor_user_id"])
    op.create_index("ix_auditevent_action", "auditevent", ["action"])
    op.create_index("ix_auditevent_target", "auditevent", ["target_kind", "target_id"])
    with op.batch_alter_table("apikey") as batch_op:
        batch_op.add_column(
            sa.Column("scopes", sa.String(length=100), nullable=False, server_default="invoke")
        )
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_apikey_user_id", "studiouser", ["user_id"], ["id"])
        batch_op.create_index("ix_apikey_user_id", ["user_id"])
    op.execute("UPDATE apikey SET scopes = 'invoke,models,manage' WHERE is_admin")


def downgrade() -> None:
    with op.batch_alter_table("apikey") as batch_op:
        batch_op.drop_index("ix_apikey_user_id")
        batch_op.drop_constraint("fk_apikey_user_id", type_="foreignkey")
        batch_op.drop_column("user_id")
        batch_op.drop_column("scopes")
    op.drop_table("auditevent")
    op.drop_table("signinthrottle")
    op.drop_table("appmember")
    op.drop_table("usersession")
    op.drop_table("studiouser")
