"""Checking a kubeconfig before the client library reads it, so a broken one is one clear error.

kubernetes_asyncio assumes a well-formed file: a list where a mapping is expected, a missing
``server`` or bad base64 ends in an AttributeError, KeyError or binascii.Error deep inside it.
``check_kubeconfig`` walks exactly the fields that library reads, for the context it will use,
and raises ``KubeconfigError`` naming the file and the field (``clusters[0] (name 'dev').cluster.server``).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tether.cluster.errors import ClusterError
from tether.render.manifests import ManifestError, load_yaml

MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024
_SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
_BASE64_FIELDS = {
    "cluster": ("certificate-authority-data",),
    "user": ("client-certificate-data", "client-key-data"),
}
_FILE_FIELDS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}
_STRING_FIELDS = {
    "cluster": ("server", "tls-server-name", "proxy-url"),
    "user": ("token", "username", "password"),
    "context": ("cluster", "user", "namespace"),
}


DEFAULT_KUBECONFIG = "~/.kube/config"


class KubeconfigError(ClusterError):
    """A kubeconfig that cannot be used; the message names the file and the field, on one line."""


def kubeconfig_files(kubeconfig: str | Path | None) -> list[Path]:
    """The files the client library will read: the one given, else ``default_location()``'s.

    Of a ``$KUBECONFIG`` list, only the files that exist (the library skips the others); the
    default file is returned even when missing, so the check can say so.
    """
    if kubeconfig:
        return [Path(kubeconfig)]
    location = default_location()
    if location == DEFAULT_KUBECONFIG:
        return [Path(location).expanduser()]
    listed = (Path(p).expanduser() for p in location.split(os.pathsep) if p)
    return [p for p in listed if p.exists()]


def default_location() -> str:
    """``$KUBECONFIG`` (paths joined by ``os.pathsep``) or ~/.kube/config, read now.

    kubernetes_asyncio reads ``$KUBECONFIG`` once, when it is imported; a process whose
    environment changed since (a forked one) would otherwise load another cluster's file.
    """
    return os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_file(path: Path) -> dict[str, Any]:
    """The parsed kubeconfig mapping; ``KubeconfigError`` when unreadable, too large, not YAML or not a mapping."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KUBECONFIG_BYTES + 1)
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path}: cannot read it: {exc.strerror or exc}") from None
    if len(raw) > MAX_KUBECONFIG_BYTES:
        raise KubeconfigError(f"kubeconfig {path}: larger than {MAX_KUBECONFIG_BYTES} bytes")
    try:
        data = load_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise KubeconfigError(f"kubeconfig {path}: not UTF-8 text") from None
    except ManifestError as exc:
        raise KubeconfigError(f"kubeconfig {path}: {_one_line(str(exc))}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise KubeconfigError(f"kubeconfig {path}: not valid YAML{where}: {_one_line(exc.problem or '')}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise KubeconfigError(f"kubeconfig {path}: not valid YAML: {_one_line(str(exc))}") from None
    if data is None:
        raise KubeconfigError(f"kubeconfig {path}: the file is empty")
    if not isinstance(data, dict):
        raise KubeconfigError(
            f"kubeconfig {path}: must be a mapping (apiVersion, clusters, users, contexts), not a {_type(data)}"
        )
    return data


def _type(value: Any) -> str:
    return {list: "list", dict: "mapping", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _entries(path: Path, data: Mapping[str, Any], section: str) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """``name → (field path, body)`` of one of clusters/users/contexts, every entry type-checked."""
    items = data.get(section)
    if items is None:
        return {}
    if not isinstance(items, list):
        raise KubeconfigError(f"kubeconfig {path}: {section} must be a list, not a {_type(items)}")
    inner = _SECTIONS[section]
    found: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for index, entry in enumerate(items):
        where = f"{section}[{index}]"
        if not isinstance(entry, dict):
            raise KubeconfigError(f"kubeconfig {path}: {where} must be a mapping, not a {_type(entry)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise KubeconfigError(f"kubeconfig {path}: {where}.name must be a non-empty string")
        where = f"{where} (name {name!r})"
        body = entry.get(inner)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise KubeconfigError(f"kubeconfig {path}: {where}.{inner} must be a mapping, not a {_type(body)}")
        found.setdefault(name, (f"{where}.{inner}", body))
    return found


def _check_body(path: Path, kind: str, where: str, body: Mapping[str, Any]) -> None:
    """Types and encodings of the fields of one cluster/user/context the client library reads."""
    for name in _STRING_FIELDS.get(kind, ()):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise KubeconfigError(f"kubeconfig {path}: {where}.{name} must be a string, not a {_type(value)}")
    for name in _BASE64_FIELDS.get(kind, ()):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise KubeconfigError(f"kubeconfig {path}: {where}.{name} must be a base64 string, not a {_type(value)}")
        try:
            base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise KubeconfigError(f"kubeconfig {path}: {where}.{name} is not valid base64") from None
    for name in _FILE_FIELDS.get(kind, ()):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise KubeconfigError(f"kubeconfig {path}: {where}.{name} must be a file path, not a {_type(value)}")
        file = Path(value).expanduser()
        if not file.is_absolute():
            file = path.parent / file
        if not file.is_file():
            raise KubeconfigError(f"kubeconfig {path}: {where}.{name}: no such file {file}")
    if kind == "cluster":
        insecure = body.get("insecure-skip-tls-verify")
        if insecure is not None and not isinstance(insecure, bool):
            raise KubeconfigError(
                f"kubeconfig {path}: {where}.insecure-skip-tls-verify must be true or false, not a {_type(insecure)}"
            )
    if kind == "user" and body.get("exec") is not None:
        exec_ = body["exec"]
        if not isinstance(exec_, dict) or not isinstance(exec_.get("command"), str):
            raise KubeconfigError(f"kubeconfig {path}: {where}.exec must be a mapping with a command string")


def check_kubeconfig(kubeconfig: str | Path | None, context: str | None = None) -> None:
    """Raise ``KubeconfigError`` unless the kubeconfig (and the context used) is well-formed.

    Every file is type-checked. The context, its cluster and user are resolved in the merged
    view (the first file naming one wins, as kubectl), and the cluster needs an http(s) server.
    """
    files = kubeconfig_files(kubeconfig)
    if not files:
        raise KubeconfigError("kubeconfig: no file found in $KUBECONFIG")
    merged: dict[str, dict[str, tuple[Path, str, Mapping[str, Any]]]] = {s: {} for s in _SECTIONS}
    current: tuple[Path, str] | None = None
    for path in files:
        data = load_file(path)
        for section, inner in _SECTIONS.items():
            for name, (where, body) in _entries(path, data, section).items():
                _check_body(path, inner, where, body)
                merged[section].setdefault(name, (path, where, body))
        value = data.get("current-context")
        if value is not None and not isinstance(value, str):
            raise KubeconfigError(f"kubeconfig {path}: current-context must be a string, not a {_type(value)}")
        if value and current is None:
            current = (path, value)
    shown = files[0] if len(files) == 1 else os.pathsep.join(str(f) for f in files)
    if context:
        chosen, origin = context, "--context"
    elif current is not None:
        chosen, origin = current[1], "current-context"
    else:
        raise KubeconfigError(f"kubeconfig {shown}: current-context is not set; name a context with --context")
    if chosen not in merged["contexts"]:
        known = ", ".join(sorted(merged["contexts"])) or "none"
        raise KubeconfigError(f"kubeconfig {shown}: context {chosen!r} ({origin}) is not in contexts (known: {known})")
    path, where, body = merged["contexts"][chosen]
    cluster_name = body.get("cluster")
    if not cluster_name:
        raise KubeconfigError(f"kubeconfig {path}: {where}.cluster is missing")
    if cluster_name not in merged["clusters"]:
        raise KubeconfigError(f"kubeconfig {path}: {where}.cluster names {cluster_name!r}, which is not in clusters")
    user_name = body.get("user")
    if user_name and user_name not in merged["users"]:
        raise KubeconfigError(f"kubeconfig {path}: {where}.user names {user_name!r}, which is not in users")
    path, where, cluster = merged["clusters"][cluster_name]
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"kubeconfig {path}: {where}.server is missing")
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(f"kubeconfig {path}: {where}.server must be an http(s) URL, not {server!r}")
