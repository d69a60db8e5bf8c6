"""The repository boundary: every path a render reads must resolve inside the checkout.

Argo CD and Flux have both shipped advisories for renders that followed a symlink or a
``../`` out of the repository (value files, manifests, chart files, kustomize bases).
The rule here is simple and applied everywhere: join lexically (as Go's filepath.Join
does), resolve symlinks, and refuse the result unless both the lexical and the real path
stay inside the real checkout root. Accepted paths are recorded as render inputs
(repository-relative, POSIX) so the render cache knows which tree ids the output depends on.

A symlink that never resolves (``a -> b -> a``) or that leads back to a directory
containing it (``loop -> ..``) is refused too: tools that follow links (helm's chart
loader does) would otherwise walk it until a limit stops them, and a silently skipped
manifest is a missing object nobody notices. A local directory (not a git checkout) is
refused above ``RenderLimits.max_checkout_bytes``, as the git cache refuses a large checkout.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tether.render.errors import render_error

ROOT = "."


@dataclass
class Checkout:
    """A checked-out repository (or local directory) that one render may read, and what it read."""

    app: str
    root: Path
    inputs: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.root = Path(os.path.realpath(self.root))

    def contains(self, path: Path | str) -> bool:
        return _within(self.root, Path(path))

    def relative(self, path: Path | str) -> str:
        """Repository-relative POSIX path of a path inside the checkout (``.`` for the root)."""
        rel = os.path.relpath(path, self.root)
        return ROOT if rel == "." else PurePosixPath(Path(rel).as_posix()).as_posix()

    def record(self, path: Path | str) -> None:
        """Remember that the render read ``path`` (a file or a whole directory)."""
        self.inputs.add(self.relative(path))

    def app_dir(self, path: str) -> Path:
        """The app's directory for ``spec.source.path``: no ``..``, not absolute, inside, a directory."""
        raw = path.strip()
        pure = PurePosixPath(raw.replace("\\", "/")) if raw else PurePosixPath(".")
        if pure.is_absolute() or ".." in pure.parts:
            raise render_error(self.app, "source.path", f"{path!r} must be a relative path without '..'")
        lexical = self.root.joinpath(*pure.parts)
        real = Path(os.path.realpath(lexical))
        if not self.contains(real):
            raise render_error(self.app, "source.path", f"{path!r} resolves outside the repository")
        if not real.is_dir():
            raise render_error(self.app, "source.path", f"{path!r} is not a directory in the repository")
        self.record(lexical)
        if real != lexical:
            self.record(real)
        return real

    def resolve(
        self, base: Path, ref: str, *, what: str, must_exist: bool = True, shown: str | None = None
    ) -> Path | None:
        """``ref`` (relative to directory ``base``) resolved inside the checkout, and recorded.

        Refuses absolute references and anything whose lexical or real path leaves the
        checkout. A missing target raises unless ``must_exist`` is false (then None).
        Messages quote ``shown`` (the reference as the user wrote it) when given.
        """
        quoted = repr(shown if shown is not None else ref)
        if not ref or os.path.isabs(ref) or ref.startswith("~"):
            raise render_error(self.app, what, f"{quoted} must be a relative path inside the repository")
        lexical = Path(os.path.normpath(os.path.join(base, ref)))
        if not self.contains(lexical):
            raise render_error(self.app, what, f"{quoted} resolves outside the repository")
        real = Path(os.path.realpath(lexical))
        if not self.contains(real):
            raise render_error(self.app, what, f"{quoted} is a symlink that points outside the repository")
        self.record(lexical)
        if not os.path.lexists(lexical) or not real.exists():
            if must_exist:
                raise render_error(self.app, what, f"{quoted} does not exist in the repository")
            return None
        if real != lexical:
            self.record(real)
        return real

    def check_symlinks(self, tree: Path, *, what: str) -> None:
        """Refuse any symlink under ``tree`` that leads outside the checkout or loops; record in-repo targets."""
        for current, dirs, files in os.walk(tree, followlinks=False):
            dirs.sort()  # walk, and so report, in name order
            for name in sorted([*dirs, *files]):
                entry = Path(current, name)
                if not entry.is_symlink():
                    continue
                target = Path(os.path.realpath(entry))
                if not self.contains(target):
                    raise render_error(
                        self.app,
                        what,
                        f"{self.relative(entry)} is a symlink that points outside the repository",
                    )
                if is_symlink_loop(entry):
                    raise render_error(self.app, what, f"{self.relative(entry)} is a symlink loop")
                if target.exists() and not _within(tree, target):
                    self.record(target)

    def read_text(self, path: Path, *, what: str) -> str:
        """A UTF-8 file's text; errors name ``what`` and never the checkout's temporary location."""
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise render_error(self.app, what, "is not UTF-8 text") from None
        except OSError as exc:
            raise render_error(self.app, what, f"cannot be read: {exc.strerror}") from None

    def input_paths(self) -> tuple[str, ...]:
        """The recorded inputs, without paths already covered by a recorded ancestor directory."""
        return minimal_paths(self.inputs)


def is_symlink_loop(link: Path) -> bool:
    """Whether following ``link`` never ends: it does not resolve (ELOOP) or leads to a directory holding it."""
    try:
        target = os.path.realpath(link, strict=True)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return os.path.isdir(target) and _within(Path(target), Path(os.path.realpath(link.parent)))


def check_local_size(app: str, root: Path, limit: int) -> None:
    """Refuse a local directory whose files (``.git`` not counted) add up to more than ``limit`` bytes.

    The same bound the git cache puts on a checkout; the walk stops as soon as it is passed,
    so a huge tree costs no more than reading ``limit`` bytes' worth of metadata.
    """
    total = 0
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [name for name in dirs if name != ".git"]
        for name in files:
            try:
                info = os.lstat(os.path.join(current, name))
            except OSError:
                continue
            total += info.st_size
            if total > limit:
                raise render_error(
                    app,
                    "source",
                    f"local directory {root} holds more than {limit} bytes of files (.git not counted), "
                    f"above the limit of {limit} bytes",
                )


def minimal_paths(paths: Iterable[str]) -> tuple[str, ...]:
    """Sorted paths, dropping any path below another one in the set (its tree id covers it)."""
    chosen: list[str] = []
    unique = set(paths)
    if ROOT in unique:
        return (ROOT,)
    for path in sorted(unique):
        parts = PurePosixPath(path).parts
        if any(str(PurePosixPath(*parts[:i])) in unique for i in range(1, len(parts))):
            continue
        chosen.append(path)
    return tuple(chosen)


def _within(root: Path, path: Path) -> bool:
    try:
        Path(os.path.normpath(path)).relative_to(root)
    except ValueError:
        return False
    return True
