"""Initial schema: repositories, harnesses, campaigns, job leases, crashes, tokens, audit.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29 01:13:58.701773
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "role IN ('viewer', 'triager', 'admin')", name=op.f("ck_api_tokens_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "repos",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=2048), nullable=False),
        sa.Column("default_branch", sa.String(length=255), nullable=True),
        sa.Column("head_commit", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_repos")),
        sa.UniqueConstraint("source", name=op.f("uq_repos_source")),
    )
    op.create_table(
        "branch_policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo", sa.String(length=64), nullable=False),
        sa.Column("branch_glob", sa.String(length=255), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("fail_on", sa.String(length=8), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "fail_on IN ('new', 'open', 'none')", name=op.f("ck_branch_policies_fail_on")
        ),
        sa.ForeignKeyConstraint(
            ["repo"], ["repos.name"], name=op.f("fk_branch_policies_repo_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_branch_policies")),
        sa.UniqueConstraint("repo", "branch_glob", name=op.f("uq_branch_policies_repo")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("repo", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("fail_on", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.CheckConstraint("fail_on IN ('new', 'open', 'none')", name=op.f("ck_campaigns_fail_on")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'triaging', 'done', 'cancelled', 'failed')",
            name=op.f("ck_campaigns_status"),
        ),
        sa.ForeignKeyConstraint(
            ["repo"], ["repos.name"], name=op.f("fk_campaigns_repo_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaigns_repo"), ["repo", "branch", "created_at"], unique=False
        )

    op.create_table(
        "crash_groups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("repo", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=40), nullable=False),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("exception_type", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("frames", sa.JSON(), nullable=False),
        sa.Column("harness", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
        sa.Column("first_seen_at", sa.Float(), nullable=False),
        sa.Column("first_campaign", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'fixed', 'flaky', 'wontfix', 'duplicate')",
            name=op.f("ck_crash_groups_status"),
        ),
        sa.ForeignKeyConstraint(
            ["merged_into"],
            ["crash_groups.id"],
            name=op.f("fk_crash_groups_merged_into_crash_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["repo"], ["repos.name"], name=op.f("fk_crash_groups_repo_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crash_groups")),
        sa.UniqueConstraint("repo", "signature", name=op.f("uq_crash_groups_repo")),
    )
    op.create_table(
        "harnesses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo", sa.String(length=64), nullable=False),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "(status = 'found' AND kind IS NOT NULL AND reason IS NULL)"
            " OR (status = 'skipped' AND reason IS NOT NULL)",
            name=op.f("ck_harnesses_status_reason"),
        ),
        sa.CheckConstraint("status IN ('found', 'skipped')", name=op.f("ck_harnesses_status")),
        sa.ForeignKeyConstraint(
            ["repo"], ["repos.name"], name=op.f("fk_harnesses_repo_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harnesses")),
        sa.UniqueConstraint("repo", "commit", "name", name=op.f("uq_harnesses_repo")),
    )
    op.create_table(
        "crash_sightings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("testcase_key", sa.String(length=1024), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("found_after_s", sa.Float(), nullable=True),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_crash_sightings_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["crash_groups.id"],
            name=op.f("fk_crash_sightings_group_id_crash_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crash_sightings")),
        sa.UniqueConstraint(
            "group_id", "campaign_id", "testcase_key", name=op.f("uq_crash_sightings_group_id")
        ),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=16), nullable=False),
        sa.Column("harness", sa.String(length=1024), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("deadline", sa.Float(), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("outcome_attempt", sa.Integer(), nullable=True),
        sa.Column("outcome_data", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'dispatched', 'running', 'done', 'dead', 'cancelled')",
            name=op.f("ck_jobs_state"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_jobs_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_jobs_campaign_id"), ["campaign_id", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_jobs_state"), ["state", "deadline"], unique=False)

    op.create_table(
        "job_attempts",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("dispatched_at", sa.Float(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("outcome_at", sa.Float(), nullable=True),
        sa.Column("outcome_data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_attempts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "attempt", name=op.f("pk_job_attempts")),
    )
    op.create_table(
        "job_stats",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("execs", sa.BigInteger(), nullable=False),
        sa.Column("coverage", sa.Integer(), nullable=False),
        sa.Column("features", sa.Integer(), nullable=False),
        sa.Column("corpus_units", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_stats_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "attempt", "elapsed_s", name=op.f("pk_job_stats")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("job_stats")
    op.drop_table("job_attempts")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_state"))
        batch_op.drop_index(batch_op.f("ix_jobs_campaign_id"))

    op.drop_table("jobs")
    op.drop_table("crash_sightings")
    op.drop_table("harnesses")
    op.drop_table("crash_groups")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_repo"))

    op.drop_table("campaigns")
    op.drop_table("branch_policies")
    op.drop_table("repos")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
    op.drop_table("api_tokens")
