"""API: web UI sessions, sealed webhook secrets, webhook deliveries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_sessions_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_table(
        "repo_secrets",
        sa.Column("repo", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo"], ["repos.name"], name=op.f("fk_repo_secrets_repo_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("repo", name=op.f("pk_repo_secrets")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("forge", sa.String(length=16), nullable=False),
        sa.Column("delivery", sa.String(length=128), nullable=False),
        sa.Column("repo", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'started', 'ignored', 'failed')",
            name=op.f("ck_webhook_deliveries_state"),
        ),
        sa.ForeignKeyConstraint(
            ["repo"],
            ["repos.name"],
            name=op.f("fk_webhook_deliveries_repo_repos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("forge", "delivery", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "forge", "repo", "body_sha256", name=op.f("uq_webhook_deliveries_forge")
        ),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_state"), ["state", "received_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_state"))
    op.drop_table("webhook_deliveries")
    op.drop_table("repo_secrets")
    op.drop_table("sessions")
