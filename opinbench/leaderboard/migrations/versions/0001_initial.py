"""The first schema: requests (queue and entries), their stored files, content-addressed blobs.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("leaderboard", sa.String(100), nullable=False),
        sa.Column("leaderboard_version", sa.Integer, nullable=False),
        sa.Column("identity_hash", sa.String(64), nullable=False, index=True),
        sa.Column("identity_key", sa.String(100), nullable=False, unique=True),
        sa.Column("identity", sa.JSON, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("revision", sa.Text),
        sa.Column("weights_hash", sa.String(80)),
        sa.Column("adapter", sa.Text),
        sa.Column("adapter_hash", sa.String(80)),
        sa.Column("dtype", sa.String(20), nullable=False),
        sa.Column("chat_template", sa.Boolean, nullable=False),
        sa.Column("submitter", sa.Text),
        sa.Column("self_reported", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("rerun_of", sa.Integer, sa.ForeignKey("requests.id")),
        sa.Column("state", sa.String(10), nullable=False, index=True),
        sa.Column("reason", sa.Text),
        sa.Column("log_tail", sa.Text),
        sa.Column("worker", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_expires", sa.Float),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float),
        sa.Column("finished", sa.Float),
        sa.Column("settings", sa.JSON),
        sa.Column("result", sa.JSON),
    )
    op.create_index("ix_requests_queue", "requests", ["state", "created", "id"])
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("files")
    op.drop_table("blobs")
    op.drop_index("ix_requests_queue", "requests")
    op.drop_table("requests")
