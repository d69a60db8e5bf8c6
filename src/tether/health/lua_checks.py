"""Which Lua health check applies to an object, from configuration and from a directory of scripts.

Scripts use Argo CD's format and layout, so its ``resource_customizations`` tree and the
``resource.customizations`` health scripts of an ``argocd-cm`` work unchanged:

* a directory holds ``<group>/<Kind>/health.lua``, and ``<Kind>/health.lua`` for the core
  group (Argo CD's key for a core kind is the bare kind); a ``_`` in a directory name is a
  wildcard (``_.crossplane.io/_`` is ``*.crossplane.io/*``);
* configuration maps ``"group/Kind"`` (``"Kind"`` for core, ``*`` as wildcard) to script text.

Lookup follows Argo CD: configuration before the directory, and within each an exact key
before any wildcard key; among wildcards the most specific (fewest ``*``, then longest) wins.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.errors import TetherError
from tether.health.lua_pool import LuaPool
from tether.health.lua_sandbox import DEFAULT_LIMITS, CompiledScript, LuaLimits, ScriptResult
from tether.resource import ResourceKey

SCRIPT_FILE = "health.lua"


@dataclass(frozen=True)
class LuaScript:
    """A health script and the key it answers for (``group/Kind`` or ``Kind``, ``*`` as wildcard)."""

    key: str
    source: str
    origin: str

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.key


def object_key(obj: Mapping[str, Any]) -> str:
    """Argo CD's key for an object's kind: ``group/Kind``, or the bare ``Kind`` for the core group."""
    key = ResourceKey.of(obj)
    return f"{key.group}/{key.kind}" if key.group else key.kind


def _split(key: str) -> tuple[str, str]:
    group, _, kind = key.rpartition("/")
    return group, kind


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("(?s:" + ".*".join(re.escape(part) for part in pattern.split("*")) + r")\Z")


@functools.lru_cache(maxsize=1024)
def _key_pattern(key: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    group, kind = _split(key)
    return _glob(group), _glob(kind)


def key_matches(key: str, group: str, kind: str) -> bool:
    """Whether a script key covers (group, kind); the group and the kind are matched separately."""
    group_pattern, kind_pattern = _key_pattern(key)
    return bool(group_pattern.match(group) and kind_pattern.match(kind))


def _specificity(script: LuaScript) -> tuple[int, int, str]:
    return (script.key.count("*"), -len(script.key.replace("*", "")), script.key)


def _check_key(key: str) -> str:
    group, _, kind = key.rpartition("/")
    if not kind or "/" in group or key != key.strip():
        raise TetherError(f"health check key {key!r} is not of the form 'group/Kind' (or 'Kind' for the core group)")
    return key


def scripts_from_directory(directory: str | os.PathLike[str]) -> list[LuaScript]:
    """Every ``health.lua`` one or two directories deep in ``directory``, keyed by its path."""
    root = Path(directory)
    if not root.is_dir():
        raise TetherError(f"Lua health check directory {root} does not exist or is not a directory")
    scripts = []
    for path in sorted(root.rglob(SCRIPT_FILE)):
        parts = path.relative_to(root).parts[:-1]
        if len(parts) not in (1, 2) or not path.is_file():
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TetherError(f"cannot read Lua health check {path}: {exc}") from None
        scripts.append(LuaScript("/".join(parts).replace("_", "*"), source, str(path)))
    return scripts


@functools.lru_cache(maxsize=256)
def _compiled(source: str, name: str, limits: LuaLimits) -> CompiledScript:
    return CompiledScript(source, name, limits)


class LuaChecks:
    """The Lua health checks an assessment consults before the built-in ones, as Argo CD does."""

    def __init__(
        self,
        scripts: Mapping[str, str] | None = None,
        *,
        directory: str | os.PathLike[str] | None = None,
        open_libs: bool | Iterable[str] = False,
        limits: LuaLimits = DEFAULT_LIMITS,
        pool: LuaPool | None = None,
    ) -> None:
        """``scripts`` maps keys to script text; ``open_libs`` is True, or the keys whose scripts get the full library.

        Scripts run on ``pool`` (the process's shared ``default_pool()`` when None).
        """
        self._configured = [
            LuaScript(_check_key(key), source, f"{key} (configuration)") for key, source in (scripts or {}).items()
        ]
        self._directory = scripts_from_directory(directory) if directory is not None else []
        self._open_libs = (
            open_libs if isinstance(open_libs, bool) else frozenset(key.replace("_", "*") for key in open_libs)
        )
        self.limits = limits
        self.pool = pool

    def script_for(self, obj: Mapping[str, Any]) -> LuaScript | None:
        """The script that decides ``obj``'s health, or None when no script covers its kind."""
        resource = ResourceKey.of(obj)
        for scripts in (self._configured, self._directory):
            covering = [script for script in scripts if key_matches(script.key, resource.group, resource.kind)]
            exact = [script for script in covering if not script.is_wildcard]
            if exact:
                return exact[0]
            wildcards = [script for script in covering if script.is_wildcard]
            if wildcards:
                return min(wildcards, key=_specificity)
        return None

    def uses_open_libs(self, script: LuaScript) -> bool:
        """Whether ``script`` runs with string, math, utf8 and coroutine besides the safe base."""
        return self._open_libs if isinstance(self._open_libs, bool) else script.key in self._open_libs

    def run(self, obj: Mapping[str, Any]) -> tuple[LuaScript, ScriptResult] | None:
        """The covering script and its verdict on ``obj``, or None when no script covers its kind."""
        script = self.script_for(obj)
        if script is None:
            return None
        return script, self.compiled(script).run(obj, open_libs=self.uses_open_libs(script), pool=self.pool)

    async def run_async(self, obj: Mapping[str, Any]) -> tuple[LuaScript, ScriptResult] | None:
        """Like ``run``, awaited on the pool: a slow script never holds up the event loop."""
        script = self.script_for(obj)
        if script is None:
            return None
        compiled = self.compiled(script)
        return script, await compiled.run_async(obj, open_libs=self.uses_open_libs(script), pool=self.pool)

    def compiled(self, script: LuaScript) -> CompiledScript:
        """``script`` compiled, once per process for the same text, name and limits."""
        return _compiled(script.source, script.origin, self.limits)
