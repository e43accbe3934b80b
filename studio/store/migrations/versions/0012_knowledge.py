"""knowledge bases: documents, chunks and their vectors (issue 17)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 07:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "knowledgebase",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("app.id", ondelete="CASCADE")),
        sa.Column("name", _STR(length=200), nullable=False),
        sa.Column("embedding_model", _STR(length=300), nullable=False),
        sa.Column("serving_model", _STR(length=300), nullable=False),
        sa.Column("chunking", sa.JSON(), nullable=False),
        sa.Column("created_by", _STR(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("app_id", "name"),
    )
    op.create_index("ix_knowledgebase_app_id", "knowledgebase", ["app_id"])
    op.create_table(
        "knowledgedocument",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kb_id", sa.Integer(), sa.ForeignKey("knowledgebase.id", ondelete="CASCADE")),
        sa.Column("name", _STR(length=300), nullable=False),
        sa.Column("kind", _STR(length=20), nullable=False),
        sa.Column("content_hash", _STR(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("kb_id", "name"),
    )
    op.create_index("ix_knowledgedocument_kb_id", "knowledgedocument", ["kb_id"])
    op.create_table(
        "knowledgechunk",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kb_id", sa.Integer(), nullable=False),
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("knowledgedocument.id", ondelete="CASCADE"),
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_knowledgechunk_kb_id", "knowledgechunk", ["kb_id"])
    op.create_index(
        "ix_knowledgechunk_document_position", "knowledgechunk", ["document_id", "position"]
    )
    op.create_table(
        "chunkvector",
        sa.Column(
            "chunk_id",
            sa.Integer(),
            sa.ForeignKey("knowledgechunk.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("model", _STR(length=300), primary_key=True),
        sa.Column("kb_id", sa.Integer(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_chunkvector_kb_model", "chunkvector", ["kb_id", "model"])


def downgrade() -> None:
    op.drop_table("chunkvector")
    op.drop_table("knowledgechunk")
    op.drop_table("knowledgedocument")
    op.drop_table("knowledgebase")
