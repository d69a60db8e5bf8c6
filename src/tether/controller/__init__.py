"""The always-on reconcile loop: queue, triggers, automated sync, operations, status, audit."""
