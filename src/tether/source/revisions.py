"""Turn a revision as users write it into a commit id, from the refs a remote advertises.

Pure functions over ``git ls-remote --symref`` output, so every rule is tested without git.
The rules, in order (first match wins):

1. empty or ``HEAD``: the commit the remote's HEAD (default branch) points to;
2. a full commit id (40 or 64 hex digits): itself, lower-cased, unchecked until fetched;
3. a full ref (``refs/...``): that ref;
4. a short name: ``refs/tags/<name>`` then ``refs/heads/<name>`` (git's own order);
5. an abbreviated commit id (4-39 hex digits): the one advertised ref tip it starts;
   when no tip matches, the caller fetches all branches and tags and asks git (see
   ``GitCache.resolve``); two different matching tips are ambiguous;
6. a semver range (``>=1.2.0 <2``, ``~1.4``, ``^1.2``, ``1.x``): the highest tag whose
   name (an optional leading ``v`` allowed) is a version inside the range; pre-releases
   only match ranges that name a pre-release, as in npm.

Tags resolve to the commit they point at (annotated tags are peeled via ``^{}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import nodesemver

from tether.errors import Reason, TetherError

FULL_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
SHORT_SHA = re.compile(r"[0-9a-fA-F]{4,39}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RemoteRefs:
    """What a remote advertises: ref name -> commit (tags already peeled), and HEAD's target."""

    refs: dict[str, str] = field(default_factory=dict)
    head: str | None = None
    head_ref: str | None = None

    def tips(self) -> set[str]:
        return set(self.refs.values()) | ({self.head} if self.head else set())

    def tags(self) -> dict[str, str]:
        return {
            name.removeprefix("refs/tags/"): sha for name, sha in self.refs.items() if name.startswith("refs/tags/")
        }


class RevisionNotFound(TetherError):
    """No branch, tag, commit or matching version for the revision."""

    reason = Reason.SOURCE_FAILED


class NeedsFetch(Exception):
    """An abbreviated commit id that no advertised ref tip starts with: only the history can tell."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
        self.prefix = prefix


def parse_ls_remote(output: str) -> RemoteRefs:
    """Parse ``git ls-remote --symref`` output; annotated tags take their peeled (``^{}``) commit."""
    direct: dict[str, str] = {}
    peeled: dict[str, str] = {}
    head_ref: str | None = None
    for line in output.splitlines():
        if not line.strip():
            continue
        left, _, name = line.partition("\t")
        if left.startswith("ref: "):
            if name == "HEAD":
                head_ref = left.removeprefix("ref: ").strip()
            continue
        sha = left.strip().lower()
        if not FULL_SHA.fullmatch(sha):
            continue
        if name.endswith("^{}"):
            peeled[name.removesuffix("^{}")] = sha
        else:
            direct[name] = sha
    head = direct.pop("HEAD", None)
    refs = {name: peeled.get(name, sha) for name, sha in direct.items()}
    return RemoteRefs(refs=refs, head=head, head_ref=head_ref)


def pick(refs: RemoteRefs, revision: str) -> str:
    """The commit ``revision`` names (rules in the module docstring).

    Raises ``RevisionNotFound`` when nothing matches and ``NeedsFetch`` for an abbreviated
    commit id that is not an advertised tip.
    """
    rev = revision.strip()
    if rev in ("", "HEAD"):
        if refs.head is None:
            raise RevisionNotFound("the repository has no default branch (is it empty?)")
        return refs.head
    if FULL_SHA.fullmatch(rev):
        return rev.lower()
    if _CONTROL.search(rev):
        raise RevisionNotFound(f"{rev!r} is not a valid revision")
    if rev.startswith("refs/"):
        if rev in refs.refs:
            return refs.refs[rev]
    else:
        for prefix in ("refs/tags/", "refs/heads/"):
            if prefix + rev in refs.refs:
                return refs.refs[prefix + rev]
    if SHORT_SHA.fullmatch(rev):
        prefix = rev.lower()
        matches = {sha for sha in refs.tips() if sha.startswith(prefix)}
        if len(matches) > 1:
            raise RevisionNotFound(f"abbreviated commit {rev!r} is ambiguous; give more digits")
        if matches:
            return matches.pop()
        raise NeedsFetch(prefix)
    version = highest_tag(refs.tags(), rev)
    if version is not None:
        return refs.tags()[version]
    if nodesemver.valid_range(rev, False) is not None:
        raise RevisionNotFound(f"no tag matches the version range {rev!r}")
    raise RevisionNotFound(f"no branch, tag or commit named {rev!r}")


def highest_tag(tags: dict[str, str], constraint: str) -> str | None:
    """Name of the highest semver tag inside ``constraint``, or None (also when it is not a range)."""
    try:
        wanted = nodesemver.Range(constraint, False)
    except (ValueError, TypeError):
        return None
    best: tuple[nodesemver.SemVer, str] | None = None
    for name in sorted(tags):
        try:
            version = nodesemver.make_semver(name, False)
        except (ValueError, TypeError):
            continue
        if not wanted.test(version):
            continue
        if best is None or version.compare(best[0]) > 0:
            best = (version, name)
    return best[1] if best else None


def ref_matches(revision: str, ref: str, default_branch: str | None) -> bool | None:
    """Whether a push to ``ref`` (a full ref) can move what ``revision`` names; None when only the
    repository's default branch could tell and it is not known (the caller resolves it).

    A branch or tag name matches its ref; ``HEAD`` or empty matches the default branch; a semver
    range matches a pushed tag inside it; a commit id never moves.
    """
    rev = revision.strip()
    if rev in ("", "HEAD"):
        if default_branch is None:
            return None
        return ref == "refs/heads/" + default_branch.removeprefix("refs/heads/")
    if FULL_SHA.fullmatch(rev):
        return False
    if rev.startswith("refs/"):
        return ref == rev
    if ref in ("refs/heads/" + rev, "refs/tags/" + rev):
        return True
    tag = ref.removeprefix("refs/tags/")
    return ref.startswith("refs/tags/") and highest_tag({tag: ""}, rev) == tag
