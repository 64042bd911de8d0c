"""Registered definitions (``boards``), the digest each entry was scored with, the public display
name, and the reproduction audit of self-reported entries (``job``, ``audit_seed``, ``audit``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("created", sa.Float, nullable=False),
    )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("definition_digest", sa.String(64)))
        batch.add_column(sa.Column("display_name", sa.Text))
        batch.add_column(sa.Column("job", sa.String(10), nullable=False, server_default="evaluate"))
        batch.add_column(sa.Column("audit_seed", sa.BigInteger))
        batch.add_column(sa.Column("audit", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        for column in ("audit", "audit_seed", "job", "display_name", "definition_digest"):
            batch.drop_column(column)
    op.drop_table("boards")
