"""The audit log: every operation (syncs, rollbacks, deletions) in SQL, with who, what revision and how it ended.

SQLite at a path under the state directory is the embedded default (``default_url``); a
PostgreSQL URL serves several replicas. ``AuditLog.open`` migrates the schema with Alembic
before anything is read or written. Nothing secret is stored: every string passes the redactor.

```python
log = await AuditLog.open(default_url(state_dir))
await log.record(AuditEntry(app="tether-system/guestbook", operation_id=run_id, kind="sync", ...))
latest = await log.entries("tether-system/guestbook", limit=20)   # newest first, with resources
await log.close()
```
"""

from tether.controller.audit.database import AuditError, display_url
from tether.controller.audit.entry import AuditEntry, AuditResource
from tether.controller.audit.store import DEFAULT_TIMEOUT, AuditLog, default_url
from tether.secrets import REDACTOR, Redactor

__all__ = [
    "DEFAULT_TIMEOUT",
    "REDACTOR",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditResource",
    "Redactor",
    "default_url",
    "display_url",
]
