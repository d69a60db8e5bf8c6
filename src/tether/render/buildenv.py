"""Argo CD's build environment: ``$ARGOCD_APP_NAME`` and its kin, expanded where Argo CD expands them.

The fields: Helm parameter values, value file and file parameter paths (after a ``$<ref>/``
prefix, which names a source and is kept), Jsonnet ext vars and TLAs, kustomize images, and
kustomize common annotations when ``commonAnnotationsEnvsubst`` is set. Nothing else: a
manifest or a values file is never expanded.

Expansion is Go's ``os.Expand`` with Argo CD's mapping, so a spec written for Argo CD renders
the same: ``$NAME`` and ``${NAME}`` are replaced, a name that is not a build variable becomes
empty, and ``$$`` is a literal ``$``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.model.source import ApplicationSource, split_ref

COMMIT_VARIABLES = frozenset({"ARGOCD_APP_REVISION", "ARGOCD_APP_REVISION_SHORT", "ARGOCD_APP_REVISION_SHORT_8"})
"""The variables whose value every new commit changes."""

_SPECIAL = set("*#$@!?-0123456789")  # one-character shell names, as os.Expand reads them
_NAME = re.compile(r"[A-Za-z0-9_]*")


@dataclass(frozen=True)
class BuildEnv:
    """What Argo CD tells a render about the app it renders, as the values of its build variables."""

    app: str
    namespace: str = ""
    project: str = ""
    revision: str = ""  # the commit rendered
    repo_url: str = ""
    path: str = ""
    target_revision: str = ""

    def variables(self) -> dict[str, str]:
        return {
            "ARGOCD_APP_NAME": self.app,
            "ARGOCD_APP_NAMESPACE": self.namespace,
            "ARGOCD_APP_PROJECT_NAME": self.project,
            "ARGOCD_APP_REVISION": self.revision,
            "ARGOCD_APP_REVISION_SHORT": self.revision[:7],
            "ARGOCD_APP_REVISION_SHORT_8": self.revision[:8],
            "ARGOCD_APP_SOURCE_REPO_URL": self.repo_url,
            "ARGOCD_APP_SOURCE_PATH": self.path,
            "ARGOCD_APP_SOURCE_TARGET_REVISION": self.target_revision,
        }


def expand(text: str, lookup: Callable[[str], str]) -> str:
    """``text`` with ``$NAME`` / ``${NAME}`` replaced by ``lookup(NAME)``: Go's ``os.Expand``, byte for byte."""
    if "$" not in text:
        return text
    out: list[str] = []
    start = 0
    j = 0
    while j < len(text):
        if text[j] == "$" and j + 1 < len(text):
            out.append(text[start:j])
            name, width = _shell_name(text[j + 1 :])
            if name:
                out.append(lookup(name))
            elif width == 0:
                out.append("$")  # not followed by a name: the dollar stays
            j += width  # bad syntax (``${}``, an unclosed ``${``) is eaten, as Go does
            start = j + 1
        j += 1
    return "".join(out) + text[start:]


def _shell_name(rest: str) -> tuple[str, int]:
    if rest[0] == "{":
        if len(rest) > 2 and rest[1] in _SPECIAL and rest[2] == "}":
            return rest[1], 3
        close = rest.find("}", 1)
        if close == 1:
            return "", 2
        if close == -1:
            return "", 1
        return rest[1:close], close + 1
    if rest[0] in _SPECIAL:
        return rest[0], 1
    name = _NAME.match(rest)
    assert name is not None  # the pattern matches the empty string
    return name.group(), name.end()


def expand_source(source: ApplicationSource, env: BuildEnv) -> tuple[ApplicationSource, frozenset[str]]:
    """``source`` with its build variables expanded, and the names it used (to know what the render depends on)."""
    variables = env.variables()
    used: set[str] = set()

    def lookup(name: str) -> str:
        if name == "$":
            return "$"
        used.add(name)
        return variables.get(name, "")

    changed = False

    def text(value: str) -> str:
        nonlocal changed
        expanded = expand(value, lookup)
        changed = changed or expanded != value
        return expanded

    def path(value: str) -> str:  # ``$<ref>/`` names a source, not a variable: only the rest is expanded
        ref = split_ref(value)
        return text(value) if ref is None else f"${ref[0]}/{text(ref[1])}"

    update: dict[str, Any] = {}
    if source.helm is not None:
        helm = source.helm
        update["helm"] = helm.model_copy(
            update={
                "parameters": tuple(p.model_copy(update={"value": text(p.value)}) for p in helm.parameters),
                "value_files": tuple(path(f) for f in helm.value_files),
                "file_parameters": tuple(p.model_copy(update={"path": path(p.path)}) for p in helm.file_parameters),
            }
        )
    if source.directory is not None:
        jsonnet = source.directory.jsonnet
        expanded = jsonnet.model_copy(
            update={
                "ext_vars": tuple(v.model_copy(update={"value": text(v.value)}) for v in jsonnet.ext_vars),
                "tlas": tuple(v.model_copy(update={"value": text(v.value)}) for v in jsonnet.tlas),
            }
        )
        update["directory"] = source.directory.model_copy(update={"jsonnet": expanded})
    if source.kustomize is not None:
        kustomize = source.kustomize
        annotations = kustomize.common_annotations
        if kustomize.common_annotations_envsubst:
            annotations = {name: text(value) for name, value in annotations.items()}
        update["kustomize"] = kustomize.model_copy(
            update={"images": tuple(text(image) for image in kustomize.images), "common_annotations": annotations}
        )
    # a spec with nothing to expand (most) is returned as it is: no copy on every render
    return (source.model_copy(update=update) if changed else source), frozenset(used)
