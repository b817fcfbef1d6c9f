"""Triage: per-group results, per-branch status, re-checks, planning, duplicate links.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 04:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_GROUP_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("triage_state", sa.String(length=16)),
    ("triage_detail", sa.Text()),
    ("crash_commit", sa.String(length=40)),
    ("reliability", sa.Float()),
    ("minimized_key", sa.String(length=1024)),
    ("falsifying_example", sa.Text()),
    ("introduced", sa.JSON()),
    ("blame", sa.JSON()),
)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("crash_groups", schema=None) as batch_op:
        for name, kind in _GROUP_COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))
    op.create_table(
        "crash_branch_status",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("fixed", sa.JSON(), nullable=True),
        sa.Column("as_of", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'fixed', 'flaky')", name=op.f("ck_crash_branch_status_status")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["crash_groups.id"],
            name=op.f("fk_crash_branch_status_group_id_crash_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "branch", name=op.f("pk_crash_branch_status")),
    )
    op.create_table(
        "campaign_checks",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("fixed", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_checks_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["crash_groups.id"],
            name=op.f("fk_campaign_checks_group_id_crash_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "group_id", name=op.f("pk_campaign_checks")),
    )
    op.create_table(
        "campaign_triage",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("checks_planned_at", sa.Float(), nullable=True),
        sa.Column("analysis_planned_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_triage_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_triage")),
    )
    op.create_table(
        "crash_links",
        sa.Column("group_a", sa.String(length=64), nullable=False),
        sa.Column("group_b", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_a"],
            ["crash_groups.id"],
            name=op.f("fk_crash_links_group_a_crash_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_b"],
            ["crash_groups.id"],
            name=op.f("fk_crash_links_group_b_crash_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_a", "group_b", name=op.f("pk_crash_links")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("crash_links")
    op.drop_table("campaign_triage")
    op.drop_table("campaign_checks")
    op.drop_table("crash_branch_status")
    with op.batch_alter_table("crash_groups", schema=None) as batch_op:
        for name, _kind in reversed(_GROUP_COLUMNS):
            batch_op.drop_column(name)
