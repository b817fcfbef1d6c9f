"""The SQL schema, as SQLAlchemy Core tables.

The migrations under ``orchestrator/migrations`` create exactly these tables; a test
compares the two. Times are UNIX epoch seconds (float) so that deadlines compare the same
way on SQLite and PostgreSQL, without time-zone conversions.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A git object id: 40 lowercase hex digits.
Sha = sa.String(40)
Epoch = sa.Float

repos = sa.Table(
    "repos",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(2048), nullable=False, unique=True),
    sa.Column("default_branch", sa.String(255), nullable=True),
    sa.Column("head_commit", Sha, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
)

# One row per file considered at a commit: a found harness or a skipped file with a reason.
harnesses = sa.Table(
    "harnesses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.ForeignKey("repos.name", ondelete="CASCADE"), nullable=False),
    sa.Column("commit", Sha, nullable=False),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("kind", sa.String(16), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(32), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("options", sa.JSON, nullable=False, default=dict),
    sa.UniqueConstraint("repo", "commit", "name"),
    sa.CheckConstraint("status IN ('found', 'skipped')", name="status"),
    sa.CheckConstraint(
        "(status = 'found' AND kind IS NOT NULL AND reason IS NULL)"
        " OR (status = 'skipped' AND reason IS NOT NULL)",
        name="status_reason",
    ),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("repo", sa.ForeignKey("repos.name", ondelete="CASCADE"), nullable=False),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("commit", Sha, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("workers", sa.Integer, nullable=False),
    sa.Column("fail_on", sa.String(8), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("started_at", Epoch, nullable=True),
    sa.Column("finished_at", Epoch, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.CheckConstraint(
        "status IN ('queued', 'running', 'triaging', 'done', 'cancelled', 'failed')",
        name="status",
    ),
    sa.CheckConstraint("fail_on IN ('new', 'open', 'none')", name="fail_on"),
    sa.Index(None, "repo", "branch", "created_at"),
)

# A job's lease: ``attempt`` is the number of the attempt last dispatched (0 = never).
# Every transition is one UPDATE guarded by the attempt number (see store/leases.py).
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("campaign_id", sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=True),
    sa.Column("queue", sa.String(16), nullable=False),
    sa.Column("harness", sa.String(1024), nullable=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("lease_owner", sa.String(255), nullable=True),
    sa.Column("deadline", Epoch, nullable=True),
    sa.Column("heartbeat_at", Epoch, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("finished_at", Epoch, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("outcome_attempt", sa.Integer, nullable=True),
    sa.Column("outcome_data", sa.JSON, nullable=True),
    sa.CheckConstraint(
        "state IN ('pending', 'dispatched', 'running', 'done', 'dead', 'cancelled')",
        name="state",
    ),
    sa.Index(None, "state", "deadline"),
    sa.Index(None, "campaign_id", "state"),
)

# Every dispatched attempt, and the outcome that attempt reported (if any).
job_attempts = sa.Table(
    "job_attempts",
    metadata,
    sa.Column("job_id", sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("dispatched_at", Epoch, nullable=False),
    sa.Column("worker", sa.String(255), nullable=True),
    sa.Column("started_at", Epoch, nullable=True),
    sa.Column("heartbeat_at", Epoch, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("outcome_at", Epoch, nullable=True),
    sa.Column("outcome_data", sa.JSON, nullable=True),
)

# Per-job statistics over time (one row per sample the worker reports).
job_stats = sa.Table(
    "job_stats",
    metadata,
    sa.Column("job_id", sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("elapsed_s", sa.Float, primary_key=True),
    sa.Column("execs", sa.BigInteger, nullable=False),
    sa.Column("coverage", sa.Integer, nullable=False),
    sa.Column("features", sa.Integer, nullable=False),
    sa.Column("corpus_units", sa.Integer, nullable=False),
    sa.Column("recorded_at", Epoch, nullable=False),
)

crash_groups = sa.Table(
    "crash_groups",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("repo", sa.ForeignKey("repos.name", ondelete="CASCADE"), nullable=False),
    sa.Column("signature", sa.String(40), nullable=False),
    sa.Column("canonical", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("exception_type", sa.String(255), nullable=True),
    sa.Column("title", sa.String(512), nullable=False),
    sa.Column("frames", sa.JSON, nullable=False),
    sa.Column("harness", sa.String(1024), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("merged_into", sa.ForeignKey("crash_groups.id"), nullable=True),
    sa.Column("first_seen_at", Epoch, nullable=False),
    sa.Column("first_campaign", sa.String(64), nullable=True),
    # Triage of the group (analyze): where it was reproduced, how reliably, the minimized
    # testcase, the introducing commit and the blamed line. Null until triage has run.
    sa.Column("triage_state", sa.String(16), nullable=True),
    sa.Column("triage_detail", sa.Text, nullable=True),
    sa.Column("crash_commit", Sha, nullable=True),
    sa.Column("reliability", sa.Float, nullable=True),
    sa.Column("minimized_key", sa.String(1024), nullable=True),
    sa.Column("falsifying_example", sa.Text, nullable=True),
    sa.Column("introduced", sa.JSON, nullable=True),
    sa.Column("blame", sa.JSON, nullable=True),
    sa.UniqueConstraint("repo", "signature"),
    sa.CheckConstraint(
        "status IN ('open', 'fixed', 'flaky', 'wontfix', 'duplicate')", name="status"
    ),
)

# One sighting of a group: which campaign saw it, at which commit, with which testcase.
crash_sightings = sa.Table(
    "crash_sightings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("group_id", sa.ForeignKey("crash_groups.id", ondelete="CASCADE"), nullable=False),
    sa.Column("campaign_id", sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=True),
    sa.Column("job_id", sa.String(64), nullable=True),
    sa.Column("attempt", sa.Integer, nullable=True),
    sa.Column("commit", Sha, nullable=False),
    sa.Column("testcase_key", sa.String(1024), nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("traceback", sa.Text, nullable=True),
    sa.Column("found_after_s", sa.Float, nullable=True),
    sa.Column("seen_at", Epoch, nullable=False),
    sa.UniqueConstraint("group_id", "campaign_id", "testcase_key"),
)

# A group's status on one branch: open there, fixed there (with the fix range) or flaky.
# A triager's wontfix / duplicate on the group itself overrides every branch.
crash_branch_status = sa.Table(
    "crash_branch_status",
    metadata,
    sa.Column("group_id", sa.ForeignKey("crash_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("branch", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("commit", Sha, nullable=False),
    sa.Column("campaign_id", sa.String(64), nullable=True),
    sa.Column("fixed", sa.JSON, nullable=True),
    # The creation time of the campaign that checked it: a late or older result never
    # overwrites what a newer campaign on the branch found.
    sa.Column("as_of", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.CheckConstraint("status IN ('open', 'fixed', 'flaky')", name="status"),
)

# What a campaign re-checked (fix verification), beside what it found by fuzzing.
campaign_checks = sa.Table(
    "campaign_checks",
    metadata,
    sa.Column("campaign_id", sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("group_id", sa.ForeignKey("crash_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("result", sa.String(16), nullable=True),
    sa.Column("fixed", sa.JSON, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
)

# Which triage jobs a campaign has planned: planning is retried until it is recorded here,
# so a crash or a broker outage between a state change and the planning loses nothing.
campaign_triage = sa.Table(
    "campaign_triage",
    metadata,
    sa.Column("campaign_id", sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("checks_planned_at", Epoch, nullable=True),
    sa.Column("analysis_planned_at", Epoch, nullable=True),
)

# Likely duplicates: two groups of one repository with similar signatures (a < b).
crash_links = sa.Table(
    "crash_links",
    metadata,
    sa.Column("group_a", sa.ForeignKey("crash_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("group_b", sa.ForeignKey("crash_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
)

branch_policies = sa.Table(
    "branch_policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.ForeignKey("repos.name", ondelete="CASCADE"), nullable=False),
    sa.Column("branch_glob", sa.String(255), nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("workers", sa.Integer, nullable=False),
    sa.Column("fail_on", sa.String(8), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", Epoch, nullable=False),
    sa.UniqueConstraint("repo", "branch_glob"),
    sa.CheckConstraint("fail_on IN ('new', 'open', 'none')", name="fail_on"),
)

# Only the sha256 of a token is stored; the token itself is shown once at creation.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("last_used_at", Epoch, nullable=True),
    sa.Column("revoked_at", Epoch, nullable=True),
    sa.CheckConstraint("role IN ('viewer', 'triager', 'admin')", name="role"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Epoch, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(1024), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False, default=dict),
    sa.Column("remote_addr", sa.String(64), nullable=True),
    sa.Index(None, "at"),
)


# A web UI login: the cookie holds a random secret, the store its sha256; the session acts
# with its token's role, and dies with it (revocation) or at its expiry.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
)

# A repository's webhook secret, sealed with the server key (verification needs the plain
# secret, so a hash would not do).
repo_secrets = sa.Table(
    "repo_secrets",
    metadata,
    sa.Column("repo", sa.ForeignKey("repos.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("sealed", sa.Text, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
)

# Every webhook delivery once (forges redeliver with the same id), and what came of it.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("forge", sa.String(16), primary_key=True),
    sa.Column("delivery", sa.String(128), primary_key=True),
    sa.Column("repo", sa.ForeignKey("repos.name", ondelete="CASCADE"), nullable=False),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("commit", Sha, nullable=False),
    # The signature covers the body only: a replay under a new delivery id is this.
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("policy_id", sa.Integer, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("campaign_id", sa.String(64), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("received_at", Epoch, nullable=False),
    sa.CheckConstraint("state IN ('queued', 'started', 'ignored', 'failed')", name="state"),
    sa.UniqueConstraint("forge", "repo", "body_sha256"),
    sa.Index(None, "state", "received_at"),
)
