"""How credentials reach git: environment only, SSH keys in short-lived 0600 files."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

from tether.source import Credentials
from tether.source.credentials import auth_env, write_askpass


def test_https_credentials_are_environment_only(tmp_path: Path) -> None:
    askpass = write_askpass(tmp_path)
    with auth_env(Credentials(password="tok-123"), askpass=askpass, scratch=tmp_path) as env:
        assert env["GIT_ASKPASS"] == str(askpass)
        assert env["TETHER_GIT_USERNAME"] == "x-access-token"
        assert env["TETHER_GIT_PASSWORD"] == "tok-123"
    assert "tok-123" not in askpass.read_text()


def test_no_credentials_means_no_askpass(tmp_path: Path) -> None:
    with auth_env(None, askpass=write_askpass(tmp_path), scratch=tmp_path) as env:
        assert "GIT_ASKPASS" not in env
        argv = shlex.split(env["GIT_SSH_COMMAND"])
        assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv


def test_ssh_key_lives_in_a_private_file_only_during_the_call(tmp_path: Path) -> None:
    creds = Credentials(
        ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
        known_hosts="github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    )
    with auth_env(creds, askpass=write_askpass(tmp_path), scratch=tmp_path) as env:
        argv = shlex.split(env["GIT_SSH_COMMAND"])
        key = Path(argv[argv.index("-i") + 1])
        hosts = Path(next(a for a in argv if a.startswith("UserKnownHostsFile=")).split("=", 1)[1])
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        assert key.read_text().endswith("-----END OPENSSH PRIVATE KEY-----\n")
        assert hosts.read_text().startswith("github.com ssh-ed25519")
        assert "IdentitiesOnly=yes" in argv
        assert "abc" not in env["GIT_SSH_COMMAND"]
    assert not key.exists() and not key.parent.exists()
