"""What the controller remembers about one app between reconciles: in memory only, never written.

The resolved desired objects are kept here (not on disk, not in status) so that a drift
event re-compares against the revision the app already has, with no git call, no render and
no ``pass`` call. They are dropped when the app is re-rendered or deleted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tether.diff import AppDiff
from tether.model import Application, ApplicationSpec, ObjectMeta
from tether.resource import NO_ORIGINS, Origins

# The annotation keys and the label keys one manifest sets.
Declared = tuple[frozenset[str], frozenset[str]]


@dataclass
class AppMemory:
    """One app's last comparison and its running operation, if any."""

    spec_digest: str = ""  # sources + destination + ignoreDifferences last compared
    revisions: tuple[str, ...] = ()
    desired: list[dict[str, Any]] | None = field(default=None, repr=False)  # secrets resolved: memory only
    origins: Origins = field(default=NO_ORIGINS, repr=False)  # the file of each of ``desired``, for messages
    source_types: tuple[str, ...] = ()
    repos: frozenset[str] = frozenset()  # normalised repository URLs of its sources
    secret_entries: frozenset[str] = frozenset()  # `pass` entries the render used (names only, never values)
    secrets_generation: int = 0  # bumped when one of those entries changes in the store
    rendered_generation: int = -1  # the secrets generation ``desired`` was resolved at
    destination: str | None = None  # the destination cluster's name
    diff: AppDiff | None = field(default=None, repr=False)
    comparison_error: str | None = None
    render_warnings: tuple[str, ...] = ()  # e.g. RepeatedResourceWarning lines of a multi-source render
    orphans: list[str] | None = None  # Kind/name of orphaned objects (projects that opt in), last listed
    operation: asyncio.Task[None] | None = field(default=None, repr=False)
    terminate_requested: bool = False
    # The ``operation`` field an operation ran for, until the informer shows it cleared: a reconcile
    # that reads the app before the clearing arrives must not run the same operation again.
    handled_operation: str | None = None
    polled: bool = False  # a poll is scheduled for it
    # Per source, the paths of its own repository its last render read (a ``ref`` source: what others read
    # through ``$<ref>/``): a push that changes none of them needs no render (tether.controller.webhooks);
    # None for a source whose output names its commit ($ARGOCD_APP_REVISION), which every push changes.
    inputs: tuple[tuple[str, ...] | None, ...] = ()
    capabilities: str = ""  # digest of the destination's capabilities its last render used; "" if it used none
    moved: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # (from, to) revisions a webhook found unread
    parsed: tuple[tuple[str, str], Application] | None = field(default=None, repr=False)  # (uid, rv), app
    digested: tuple[ApplicationSpec, str] | None = field(default=None, repr=False)  # a spec, its spec_digest
    # Per (group, kind, name) of a desired object, the annotation and label keys its manifest sets
    # (tether.controller.compare.declared_metadata); set and dropped with ``desired``.
    declared: dict[tuple[str, str, str], Declared] = field(default_factory=dict, repr=False)

    def application(self, obj: dict[str, Any]) -> Application:
        """``Application.from_object(obj)``, parsed once per (uid, resourceVersion): most reconciles read
        an object they have parsed before (raises ``TetherError`` as that does).

        A new resourceVersion at the same ``generation`` (a status write, an annotation) keeps the
        parsed spec and operation: the API server bumps a custom resource's generation on every
        change outside ``metadata`` and ``status``, so only those two are read again.
        """
        meta = obj.get("metadata") or {}
        key = (str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""))
        if self.parsed is None or not key[1]:
            app = Application.from_object(obj)
        elif self.parsed[0] == key:
            return self.parsed[1]
        else:
            app = _same_generation(self.parsed[1], obj, meta) or Application.from_object(obj)
        self.parsed = (key, app)
        return app

    @property
    def operating(self) -> bool:
        return self.operation is not None and not self.operation.done()

    def drop_desired(self) -> None:
        self.desired = None
        self.origins = NO_ORIGINS
        self.diff = None
        self.declared = {}


def _same_generation(previous: Application, obj: dict[str, Any], meta: dict[str, Any]) -> Application | None:
    """``previous`` with ``obj``'s metadata and status, when ``obj`` is the same object at the same generation."""
    generation = meta.get("generation")
    if not generation or generation != previous.metadata.generation or meta.get("uid") != previous.metadata.uid:
        return None
    try:
        metadata = ObjectMeta.model_validate(meta)
    except ValidationError:
        return None  # the full parse names the field
    status = obj.get("status")
    if status is not None and not isinstance(status, dict):
        return None
    return previous.model_copy(update={"metadata": metadata, "status": dict(status or {})})
