"""How far the live cluster is from what git says: plain async functions over dicts.

Comparison is Argo CD's server-side diff: each desired object (marked with the app's
tracking id, exactly as sync applies it) is applied with ``dryRun=All`` and ``force``
(Tether's field manager takes over conflicting fields, as a real sync would); the
result — the object as the server would store it, defaults and mutating webhooks
included — is compared with the live object from the ``LiveCache``, both normalised.
When the dry run cannot run (the kind is not served because its CRD is not installed
yet, the namespace does not exist yet, or the server rejects the object) the desired
object is compared client-side (desired overlaid on live) and the result says so.

Public surface::

    await diff_app(app, desired, *, cluster, cache, ignore_differences=(), namespace=None,
                   jq_timeout=2.0, extra_kinds=(), redactor=REDACTOR, dry_runs=None) -> AppDiff
           (``dry_runs``: a ``DryRuns`` shared with the sync; outcomes stored under mode
           "apply-force" for ``mark(obj, app)`` and the live resourceVersion they met, so a diff
           that finds nothing changed sends no request that writes)
    DryRuns, object_hash  (see tether.diff.dryrun)
    AppDiff.app, .resources: list[ResourceDiff], .in_sync: bool, .errors: list[str],
           .out_of_sync: list[ResourceDiff], .text() -> str, .to_dict() -> dict
    ResourceDiff.key: ResourceKey, .status: "Synced"|"OutOfSync"|"Missing"|"Extraneous",
           .counts_as_drift: bool, .to_dict(),
           .changed: list[str] (JSON pointers, e.g. "/spec/replicas"; empty when one side is absent),
           .live / .predicted: normalised, Secret-masked objects (None when absent),
           .diff: unified YAML text diff, .owner: app named by the live tracking id,
           .shared_with: that owner when it is another app, .ignore_extraneous: bool,
           .comparison: "server-side"|"client-side", .note: why it fell back,
           .error: the server's rejection of the desired object, if any
    await assign_namespaces(objects, *, cluster, namespace) -> list[dict]
           (namespaced kinds without a namespace get ``namespace``; cluster-scoped lose theirs)
    normalise(obj) -> dict  (shares the maps it does not change with obj: copy before editing it)
    mask_secret(live, desired) -> (live', desired')
    IgnoreRule.from_spec(dict), parse_ignore_differences(specs) -> list[IgnoreRule]
    await apply_ignores(obj, rules, *, managed_from=None, jq_timeout) -> dict  (ignored fields removed)
    await respect_ignored(desired, live, rules, *, jq_timeout) -> dict
           (RespectIgnoreDifferences=true: ignored fields of desired take live's value, or go)
    DiffError (TetherError), JqError(DiffError), JqTimeout(JqError)

Hooks (objects with a ``hook`` annotation) take no part in a diff, as in Argo CD.
Nothing here writes to a cluster, and no Secret value ever appears in a result.
"""

from tether.diff.app import (
    EXTRANEOUS,
    MISSING,
    OUT_OF_SYNC,
    SYNCED,
    AppDiff,
    ResourceDiff,
    assign_namespaces,
    diff_app,
)
from tether.diff.dryrun import DryRuns, object_hash
from tether.diff.errors import DiffError, JqError, JqTimeout
from tether.diff.ignore import IgnoreRule, apply_ignores, parse_ignore_differences, respect_ignored
from tether.diff.masking import mask_secret
from tether.diff.normalise import normalise

__all__ = [
    "EXTRANEOUS",
    "MISSING",
    "OUT_OF_SYNC",
    "SYNCED",
    "AppDiff",
    "DiffError",
    "DryRuns",
    "IgnoreRule",
    "JqError",
    "JqTimeout",
    "ResourceDiff",
    "apply_ignores",
    "assign_namespaces",
    "diff_app",
    "mask_secret",
    "normalise",
    "object_hash",
    "parse_ignore_differences",
    "respect_ignored",
]
