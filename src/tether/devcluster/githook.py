"""GitHub-format push webhooks from the devcluster git server's ``post-receive`` hook.

``GitHttpServer(..., webhook_url=..., webhook_secret=...)`` installs, in every bare repository it
serves, a ``post-receive`` hook (a two-line ``/bin/sh`` script that runs this module with the
server's own Python interpreter) and ``tether-webhook.json`` (mode 0600: the URL, the secret and
the repository's clone URL). For each ref a push updates, the hook POSTs one GitHub push event:

    POST <url>
    Content-Type: application/json
    User-Agent: GitHub-Hookshot/tether-devcluster
    X-GitHub-Event: push
    X-GitHub-Delivery: <uuid4>
    X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body with the secret>   (when a secret is set)

    {"ref": ..., "before": ..., "after": ..., "created": ..., "deleted": ..., "forced": ...,
     "commits": [...at most 20, oldest first...], "head_commit": ..., "repository": {...}, ...}

The hook never fails a push and never holds it for long: the whole delivery has a 5 s budget,
problems are written to the hook's stderr (git shows them as ``remote: ...``), and it always
exits 0. It talks to nothing but the configured URL (no proxies, no redirects followed), and
neither the secret nor the signature is ever printed.

This module imports only the standard library, so the hook starts quickly.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

CONFIG_NAME = "tether-webhook.json"
HOOK_NAME = "post-receive"
HOOK_MARKER = "# tether-devcluster: post-receive webhook"
ZERO_SHA = "0" * 40
USER_AGENT = "GitHub-Hookshot/tether-devcluster"
TIMEOUT = 5.0
MAX_COMMITS = 20
_MAX_STDIN = 4 * 1024 * 1024
_MAX_ANSWER = 64 * 1024
_GIT_TIMEOUT = 5.0
_SOURCE_SPEC = "tether.devcluster.githook"


class WebhookError(Exception):
    """A webhook could not be configured or delivered (the message never holds the secret)."""


@dataclass(frozen=True)
class RefUpdate:
    """One line of a ``post-receive`` hook's stdin: ``<old> <new> <ref>``."""

    old: str
    new: str
    ref: str

    @property
    def created(self) -> bool:
        return self.old == ZERO_SHA

    @property
    def deleted(self) -> bool:
        return self.new == ZERO_SHA


@dataclass(frozen=True)
class HookConfig:
    """What a repository's hook reads from its ``tether-webhook.json``."""

    url: str
    secret: str | None
    clone_url: str

    def to_json(self) -> str:
        return json.dumps({"url": self.url, "secret": self.secret, "clone_url": self.clone_url})

    @classmethod
    def load(cls, git_dir: Path) -> HookConfig | None:
        """The repository's config, or None when it has none (the webhook is off)."""
        try:
            data = json.loads((git_dir / CONFIG_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        if not isinstance(data, dict):
            raise WebhookError(f"{CONFIG_NAME}: not a JSON object")
        url, secret, clone_url = data.get("url"), data.get("secret"), data.get("clone_url")
        if not isinstance(url, str) or not isinstance(clone_url, str) or not isinstance(secret, str | None):
            raise WebhookError(f"{CONFIG_NAME}: url and clone_url must be strings, secret a string or null")
        return cls(url=check_url(url), secret=secret or None, clone_url=clone_url)


# ---- the payload


def parse_updates(text: str) -> list[RefUpdate]:
    """The ref updates of a ``post-receive`` stdin; malformed lines are skipped."""
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(_is_sha(p) for p in parts[:2]) and parts[2].startswith("refs/"):
            updates.append(RefUpdate(parts[0], parts[1], parts[2]))
    return updates


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _git(git_dir: Path, *args: str, input: str | None = None, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir), *args],
        input=input.encode() if input is not None else None,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=_GIT_TIMEOUT,
        check=False,
    )
    if check and done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()[-500:]
        raise WebhookError(f"git {args[0]} failed (exit {done.returncode}): {detail}")
    return done.stdout.decode("utf-8", "replace")


def _peel_commit(git_dir: Path, sha: str) -> str | None:
    out = _git(git_dir, "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", check=False).strip()
    return out or None


_FORMAT = "%H%x1f%T%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%B"


def _commits(git_dir: Path, shas: list[str], web_url: str) -> list[dict[str, Any]]:
    """GitHub commit objects for ``shas``, in that order, each with its added/modified/removed files."""
    if not shas:
        return []
    out = _git(git_dir, "log", "--no-walk=unsorted", "-z", f"--format={_FORMAT}", *shas)
    commits = []
    for record in out.split("\0"):
        if not record:
            continue
        sha, tree, parents, an, ae, ad, cn, ce, cd, message = record.split("\x1f", 9)
        added, modified, removed = _changed_files(git_dir, sha, parents.split())
        commits.append(
            {
                "id": sha,
                "tree_id": tree,
                "distinct": True,
                "message": message.rstrip("\n"),
                "timestamp": ad,
                "url": f"{web_url}/commit/{sha}",
                "author": {"name": an, "email": ae},
                "committer": {"name": cn, "email": ce, "date": cd},
                "added": added,
                "removed": removed,
                "modified": modified,
            }
        )
    return commits


def _changed_files(git_dir: Path, sha: str, parents: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Added, modified and removed paths of a commit against its first parent; a rename is removed + added."""
    base = [parents[0], sha] if parents else ["--root", sha]
    out = _git(git_dir, "diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", "--name-status", *base)
    added: list[str] = []
    modified: list[str] = []
    removed: list[str] = []
    fields = out.split("\0")
    for status, path in zip(fields[0::2], fields[1::2], strict=False):
        if not status or not path:
            continue
        {"A": added, "D": removed}.get(status[0], modified).append(path)
    return added, modified, removed


def _new_commits(git_dir: Path, update: RefUpdate) -> list[str]:
    """The commits a branch push brought (newest 20, oldest first); a tag or a deletion brings none."""
    if update.deleted or not update.ref.startswith("refs/heads/"):
        return []
    revs = [update.new]
    if update.created:  # new to the repository: not reachable from any other ref
        refs = _git(git_dir, "for-each-ref", "--format=%(objectname) %(refname)").splitlines()
        revs += [f"^{sha}" for sha, _, name in (r.partition(" ") for r in refs) if name != update.ref and sha]
    else:
        revs.append(f"^{update.old}")
    out = _git(git_dir, "rev-list", f"--max-count={MAX_COMMITS}", "--reverse", "--stdin", input="\n".join(revs) + "\n")
    return out.split()


def _forced(git_dir: Path, update: RefUpdate) -> bool:
    if update.created or update.deleted:
        return False
    old, new = _peel_commit(git_dir, update.old), _peel_commit(git_dir, update.new)
    if old is None or new is None:
        return True
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir), "merge-base", "--is-ancestor", old, new],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=_GIT_TIMEOUT,
        check=False,
    )
    return done.returncode != 0


def repository(git_dir: Path, clone_url: str) -> dict[str, Any]:
    """GitHub's ``repository`` object for a repository of the devcluster git server."""
    parts = urlsplit(clone_url)
    path = parts.path.strip("/")
    full_name = path.removesuffix(".git")
    name = full_name.rsplit("/", 1)[-1]
    owner = full_name.rsplit("/", 1)[0] if "/" in full_name else "tether-devcluster"
    default = _git(git_dir, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip() or "main"
    host = parts.hostname or "localhost"
    return {
        "id": zlib.crc32(full_name.encode()),
        "node_id": f"tether-devcluster:{full_name}",
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": {"name": owner, "login": owner, "type": "Organization"},
        "html_url": clone_url,
        "url": clone_url,
        "description": None,
        "fork": False,
        "git_url": f"git://{host}/{path}",
        "ssh_url": f"git@{host}:{path}",
        "clone_url": clone_url,
        "svn_url": clone_url,
        "default_branch": default,
        "master_branch": default,
        "pushed_at": int(time.time()),
        "archived": False,
        "disabled": False,
        "visibility": "public",
    }


def push_event(
    git_dir: Path,
    update: RefUpdate,
    *,
    clone_url: str,
    pusher: str | None = None,
    repo: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The GitHub ``push`` event for one ref update of the bare repository ``git_dir``."""
    repo = dict(repo) if repo is not None else repository(git_dir, clone_url)
    web_url = str(repo["html_url"]).removesuffix("/")
    commits = _commits(git_dir, _new_commits(git_dir, update), web_url)
    head_commit: dict[str, Any] | None = None
    if not update.deleted:
        peeled = _peel_commit(git_dir, update.new)
        if commits and commits[-1]["id"] == peeled:
            head_commit = commits[-1]
        elif peeled is not None:
            head_commit = _commits(git_dir, [peeled], web_url)[0]
    if update.created:
        compare = f"{web_url}/commit/{update.new[:12]}"
    else:
        compare = f"{web_url}/compare/{update.old[:12]}...{update.new[:12]}"
    who = pusher or "anonymous"
    return {
        "ref": update.ref,
        "before": update.old,
        "after": update.new,
        "repository": repo,
        "pusher": {"name": who, "email": None},
        "sender": {"login": who, "type": "User"},
        "created": update.created,
        "deleted": update.deleted,
        "forced": _forced(git_dir, update),
        "base_ref": None,
        "compare": compare,
        "commits": commits,
        "head_commit": head_commit,
    }


# ---- delivery


def check_url(url: str) -> str:
    """``url`` when it is an http(s) URL with a host; WebhookError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"webhook URL must be http:// or https:// with a host: {shown_url(url)!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise WebhookError(f"webhook URL has a bad port: {shown_url(url)!r}") from None
    return url


def shown_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def sign(body: bytes, secret: str) -> str:
    """GitHub's ``X-Hub-Signature-256`` value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def headers(body: bytes, secret: str | None, event: str = "push") -> dict[str, str]:
    """The headers GitHub sends with a webhook delivery of ``body``."""
    result = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
    if secret:
        result["X-Hub-Signature-256"] = sign(body, secret)
    return result


def deliver(url: str, event: Mapping[str, Any], secret: str | None, *, timeout: float = TIMEOUT) -> int:
    """POST ``event`` to ``url`` as GitHub would; the answer's status (WebhookError when none came).

    Only ``url`` is contacted: no proxy, and a redirect is an answer like any other, not followed.
    """
    parts = urlsplit(check_url(url))
    body = json.dumps(event, separators=(",", ":")).encode("utf-8")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", target, body=body, headers=headers(body, secret))
        answer = connection.getresponse()
        answer.read(_MAX_ANSWER)
        return answer.status
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookError(f"delivery to {shown_url(url)} failed: {type(exc).__name__}: {exc}") from None
    finally:
        connection.close()


# ---- installation (called by the git server)


def hook_script(python: str | None = None) -> str:
    """The ``post-receive`` script: this module, run by ``python`` (the server's interpreter) in isolated mode."""
    interpreter = shlex.quote(python or sys.executable)
    return f'#!/bin/sh\n{HOOK_MARKER}; written by GitHttpServer, rewritten on its next start\nexec {interpreter} -I -m {_SOURCE_SPEC} "$@"\n'


def is_ours(hook: Path) -> bool:
    try:
        return HOOK_MARKER in hook.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return False


def install(git_dir: Path, config: HookConfig) -> None:
    """Write ``git_dir``'s config (0600) and hook (0755); WebhookError when a foreign hook is in the way."""
    hook = git_dir / "hooks" / HOOK_NAME
    if (hook.exists() or hook.is_symlink()) and not is_ours(hook):
        raise WebhookError(f"{hook} exists and is not Tether's: left alone, this repository sends no webhook")
    _write_private(git_dir / CONFIG_NAME, config.to_json(), 0o600)
    script = hook_script()
    try:
        current = hook.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current != script:
        hook.parent.mkdir(exist_ok=True)
        _write_private(hook, script, 0o755)


def uninstall(git_dir: Path) -> None:
    """Remove the hook and config ``install`` wrote (a foreign hook is left alone)."""
    hook = git_dir / "hooks" / HOOK_NAME
    if is_ours(hook):
        hook.unlink(missing_ok=True)
    (git_dir / CONFIG_NAME).unlink(missing_ok=True)


def _write_private(path: Path, text: str, mode: int) -> None:
    """Write ``path`` atomically, created with ``mode`` from the start (the secret is never world-readable)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# ---- the hook itself


class _OutOfTime(Exception):
    pass


def _out_of_time(signum: int, frame: FrameType | None) -> None:
    raise _OutOfTime


def _say(message: str) -> None:
    try:
        sys.stderr.write(f"tether webhook: {message}\n")
        sys.stderr.flush()
    except OSError:
        pass


def run_hook(git_dir: Path, stdin: str, *, pusher: str | None = None, budget: float = TIMEOUT) -> int:
    """Send one push event per ref update in ``stdin``; the number delivered (answered 2xx).

    Problems are reported on stderr, never raised; the whole run stops after ``budget`` seconds.
    """
    try:
        config = HookConfig.load(git_dir)
    except (WebhookError, OSError, ValueError) as exc:
        _say(f"not sent: {exc}")
        return 0
    if config is None:
        return 0
    deadline = time.monotonic() + budget
    delivered = 0
    repo: dict[str, Any] | None = None
    for update in parse_updates(stdin):
        left = deadline - time.monotonic()
        if left <= 0:
            _say(f"out of time after {budget:g}s: no webhook for {update.ref}")
            continue
        try:
            if repo is None:
                repo = repository(git_dir, config.clone_url)
            event = push_event(git_dir, update, clone_url=config.clone_url, pusher=pusher, repo=repo)
            status = deliver(config.url, event, config.secret, timeout=max(0.1, deadline - time.monotonic()))
        except (WebhookError, OSError, subprocess.SubprocessError, ValueError) as exc:
            _say(f"{update.ref}: {exc}")
            continue
        if 200 <= status < 300:
            delivered += 1
        else:
            _say(f"{update.ref}: {shown_url(config.url)} answered {status}")
    return delivered


def main() -> int:
    """The ``post-receive`` hook: always exits 0, so a webhook problem never fails a push."""
    try:
        stdin = sys.stdin.buffer.read(_MAX_STDIN).decode("utf-8", "replace")
        git_dir = Path(os.environ.get("GIT_DIR") or ".").resolve()
        previous = signal.signal(signal.SIGALRM, _out_of_time)
        signal.setitimer(signal.ITIMER_REAL, TIMEOUT + 0.5)  # a hard stop, whatever blocks
        try:
            run_hook(git_dir, stdin, pusher=os.environ.get("REMOTE_USER") or None)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    except _OutOfTime:
        _say(f"out of time after {TIMEOUT:g}s")
    except BaseException as exc:  # never fail a push
        _say(f"not sent: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
