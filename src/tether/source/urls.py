"""Repository URLs: strip and redact credentials, and normalise a URL into a cache key.

Credentials must never travel inside a URL (it ends up in argv, logs and error text), so
every URL is split into a clean URL plus userinfo at the door, and every message that
might contain one goes through ``redact_url``.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from tether.errors import TetherError

# scheme://userinfo@ — userinfo may itself contain a raw '@', so match up to the last one.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]*@)")
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$")


def redact_url(text: str) -> str:
    """``text`` with the userinfo (user, password or token) removed from every ``scheme://`` URL in it.

    Works on a single URL or on free text such as git's stderr. scp-like SSH addresses
    (``git@host:org/repo``) carry no secret and are left alone.
    """
    return _USERINFO.sub(lambda m: m.group("scheme"), text)


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``(url without userinfo, username, password)`` for a ``scheme://`` URL; others are returned unchanged."""
    check_url(url)
    if "://" not in url:
        return url, None, None
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if sep else None


def check_url(url: str) -> None:
    """Refuse URLs git could read as an option or that hide a line break."""
    if not url or url.startswith("-") or any(c in url for c in "\r\n\0"):
        raise TetherError(f"invalid repository URL: {redact_url(url)!r}")


def is_ssh_url(url: str) -> bool:
    if "://" in url:
        return urlsplit(url).scheme.lower() in ("ssh", "git+ssh", "ssh+git")
    return bool(_SCP_LIKE.match(url)) and not url.startswith(("/", "."))


def normalise_url(url: str) -> str:
    """One spelling per repository: no userinfo, lower-case scheme and host, no trailing ``/`` or ``.git``."""
    clean, _, _ = split_userinfo(url)
    if "://" in clean:
        parts = urlsplit(clean)
        host = parts.netloc.lower()
        path = parts.path.rstrip("/").removesuffix(".git")
        return urlunsplit((parts.scheme.lower(), host, path, parts.query, ""))
    scp = _SCP_LIKE.match(clean)
    if scp and not clean.startswith(("/", ".")):
        user = f"{scp.group('user')}@" if scp.group("user") else ""
        return f"{user}{scp.group('host').lower()}:{scp.group('path').rstrip('/').removesuffix('.git')}"
    return clean.rstrip("/").removesuffix(".git") or clean


def cache_key(url: str) -> str:
    """Directory name of the bare cache of ``url``: a hash of its normalised form."""
    return hashlib.sha256(normalise_url(url).encode()).hexdigest()[:32]


def repository_identity(url: str) -> str:
    """One string per repository, for matching a webhook's repository URLs against app sources.

    Scheme, userinfo, port, query, fragment, a trailing ``/`` and ``.git`` are dropped and
    everything is lower-cased; the scp-like ssh form ``git@host:org/repo`` reads as
    ``host/org/repo``. So ``https://Git.Example.com/Org/Repo``, ``ssh://git@git.example.com:22/org/repo.git``
    and ``git@git.example.com:org/repo.git`` all give ``git.example.com/org/repo``. Local paths
    (and ``file://`` URLs) give the path, normalised the same way. Never raises.
    """
    text = url.strip()
    scheme_url = re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?P<netloc>[^/?#]*)(?P<path>[^?#]*)", text)
    scp = _SCP_LIKE.match(text)
    if scheme_url:
        netloc = scheme_url.group("netloc").rpartition("@")[2]
        host = netloc[: netloc.find("]") + 1] if netloc.startswith("[") else netloc.partition(":")[0]  # [IPv6]:port
        path = unquote(scheme_url.group("path"))
    elif scp and not text.startswith(("/", ".")):
        host, path = scp.group("host"), scp.group("path")
    else:
        host, path = "", text
    path = path.rstrip("/").removesuffix(".git").rstrip("/")
    if not host:
        return (path or text).lower()
    path = path.lstrip("/")
    return (f"{host}/{path}" if path else host).lower()
