"""The first schema: one row per operation, one per resource result of it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tether_audit_operations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("operation_id", sa.String(128), nullable=False),
        sa.Column("app", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("initiated_by", sa.String(256), nullable=False),
        sa.Column("automated", sa.Boolean, nullable=False),
        sa.Column("revisions", sa.String(4096), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("message", sa.String(4096), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("operation_id", name="uq_tether_audit_operations_operation_id"),
    )
    op.create_index("ix_tether_audit_operations_started_at", "tether_audit_operations", ["started_at", "id"])
    op.create_index("ix_tether_audit_operations_app_started_at", "tether_audit_operations", ["app", "started_at", "id"])
    op.create_table(
        "tether_audit_resources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "operation_pk",
            sa.Integer,
            sa.ForeignKey("tether_audit_operations.id", ondelete="CASCADE", name="fk_tether_audit_resources_operation"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("group", sa.String(253), nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=True),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("message", sa.String(2048), nullable=False),
        sa.Column("hook_phase", sa.String(64), nullable=True),
    )
    op.create_index("ix_tether_audit_resources_operation", "tether_audit_resources", ["operation_pk", "position"])


def downgrade() -> None:
    op.drop_table("tether_audit_resources")
    op.drop_table("tether_audit_operations")
