"""Git as a source of desired state: resolve revisions, fetch single commits, materialise trees.

cache = GitCache(Path("/var/cache/tether/git"))
sha = await cache.resolve(url, "^1.2", credentials)
async with cache.checkout(url, sha, credentials) as tree:
    ...                                  # read-only files of that commit
await cache.tree_id(url, sha, "apps/web")  # changes only when apps/web changes
"""

from tether.source.cache import GitCache, GitError, GitRepository
from tether.source.credentials import Credentials
from tether.source.revisions import RemoteRefs, parse_ls_remote, pick
from tether.source.urls import cache_key, normalise_url, redact_url, split_userinfo

__all__ = [
    "Credentials",
    "GitCache",
    "GitError",
    "GitRepository",
    "RemoteRefs",
    "cache_key",
    "normalise_url",
    "parse_ls_remote",
    "pick",
    "redact_url",
    "split_userinfo",
]
