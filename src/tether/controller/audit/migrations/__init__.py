"""Alembic migrations of the audit log, run programmatically by ``AuditLog.open`` (no alembic.ini)."""
