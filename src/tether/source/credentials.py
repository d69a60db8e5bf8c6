"""Git credentials, handed to git without ever appearing in argv, URLs or messages.

HTTPS: ``GIT_ASKPASS`` points at a tiny script that prints values from the child's own
environment (``TETHER_GIT_USERNAME`` / ``TETHER_GIT_PASSWORD``), so the secret lives only
in the git process's environment. SSH: the key is written 0600 into a private directory
for the duration of one git call and used through ``GIT_SSH_COMMAND`` with strict host
key checking against the given ``known_hosts``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# GitHub's convention for tokens; GitLab, Gitea and Bitbucket accept any non-empty user name with a token.
TOKEN_USERNAME = "x-access-token"

_ASKPASS = """#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "$TETHER_GIT_USERNAME" ;;
  *) printf '%s\\n' "$TETHER_GIT_PASSWORD" ;;
esac
"""


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to one repository: HTTPS user + password/token, or an SSH key.

    ``password`` holds a password or an access token; with a token alone, the user name
    sent is ``x-access-token``. ``known_hosts`` (OpenSSH format) is required for SSH:
    host keys are always checked.
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = None

    def secret_values(self) -> list[str]:
        """Values that must be masked wherever text about this repository is shown."""
        return [v for v in (self.password, self.ssh_private_key) if v]


def write_askpass(directory: Path) -> Path:
    """Install the askpass script (it holds no secret) in ``directory``; its path."""
    script = directory / "askpass.sh"
    if not script.exists():
        tmp = directory / f".askpass-{os.getpid()}"
        tmp.write_text(_ASKPASS)
        tmp.chmod(0o700)
        tmp.replace(script)
    return script


@contextmanager
def auth_env(credentials: Credentials | None, *, askpass: Path, scratch: Path) -> Iterator[dict[str, str]]:
    """Environment variables that make one git call authenticate; SSH key files are removed afterwards."""
    ssh = ["ssh", "-F", os.devnull, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    env: dict[str, str] = {"GIT_SSH_VARIANT": "ssh"}
    private: Path | None = None
    try:
        if credentials is not None and (credentials.username or credentials.password):
            env["GIT_ASKPASS"] = str(askpass)
            env["TETHER_GIT_USERNAME"] = credentials.username or TOKEN_USERNAME
            env["TETHER_GIT_PASSWORD"] = credentials.password or ""
        known_hosts = os.devnull
        if credentials is not None and (credentials.ssh_private_key or credentials.known_hosts):
            private = Path(tempfile.mkdtemp(prefix="ssh-", dir=scratch))
            private.chmod(0o700)
            if credentials.known_hosts:
                hosts = private / "known_hosts"
                hosts.write_text(credentials.known_hosts.rstrip("\n") + "\n")
                known_hosts = str(hosts)
            if credentials.ssh_private_key:
                key = private / "key"
                fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(credentials.ssh_private_key.rstrip("\n") + "\n")
                ssh += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        ssh += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        env["GIT_SSH_COMMAND"] = shlex.join(ssh)
        yield env
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
