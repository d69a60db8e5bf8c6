"""A real git server on loopback: ``git http-backend`` (smart HTTP) behind a small threaded HTTP server.

Tests and the demo need a git remote that behaves like a hosted one — smart HTTP, optional
basic auth, pushes of any size — without a network, a daemon or global git configuration.
Each request runs ``git http-backend`` as a CGI program over a directory of bare repositories.

    with GitHttpServer(root, username="u", password="p") as server:
        repo = server.create_repo("apps", from_dir=Path("examples/apps"))
        sha = repo.commit("bump image", {"deploy.yaml": "..."})
        server.url_for("apps")   # http://127.0.0.1:PORT/apps.git
        server.requests          # [(method, path), ...] received so far; server.connections too

The counts let tests assert that something (a render) made no request at all.

Bare repositories created here allow fetching any commit by id
(``uploadpack.allowReachableSHA1InWant`` / ``allowAnySHA1InWant``), as GitHub, GitLab and
Bitbucket do, so clients can ``git fetch --depth 1 origin <sha>``.

With ``webhook_url`` (or after ``set_webhook``), every repository here sends a GitHub-format push
event to that URL for each ref a push updates, signed with ``webhook_secret`` as GitHub signs
(``X-Hub-Signature-256``), from a ``post-receive`` hook: see ``tether.devcluster.githook``.

    with GitHttpServer(root, webhook_url="http://127.0.0.1:8080/api/webhook", webhook_secret="s") as server:
        ...
        server.set_webhook("http://127.0.0.1:9090/api/webhook", "s2")   # existing repositories follow
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal
from urllib.parse import unquote, urlsplit

from tether.devcluster import githook
from tether.errors import TetherError
from tether.proc import base_env, trim

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "main"
AUTHOR_NAME = "Tether Test"
AUTHOR_EMAIL = "tether-test@example.invalid"
DEFAULT_MAX_BODY = 256 * 1024 * 1024
DEFAULT_CGI_TIMEOUT = 120.0
GIT_TIMEOUT = 60.0
_COPY_CHUNK = 64 * 1024
_MAX_LINE = 64 * 1024
_MAX_CGI_HEADERS = 100
_RECEIVE_PACK = "/git-receive-pack"

_BARE_CONFIG = {
    "http.receivepack": "true",
    "uploadpack.allowReachableSHA1InWant": "true",
    "uploadpack.allowAnySHA1InWant": "true",
    "uploadpack.allowFilter": "true",
    "receive.denyNonFastForwards": "false",
    "receive.autogc": "false",  # no gc after every push: keeps test pushes fast
}

_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$TETHER_GIT_USERNAME" ;;
  *) printf '%s\\n' "$TETHER_GIT_PASSWORD" ;;
esac
"""


def git_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for git that ignores every user/system config and never prompts."""
    env = base_env(
        {
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": AUTHOR_NAME,
            "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
            "GIT_COMMITTER_NAME": AUTHOR_NAME,
            "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        }
    )
    if extra:
        env.update(extra)
    return env


def _git(args: list[str], *, env: Mapping[str, str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise TetherError(f"git {args[0]}: timed out after {GIT_TIMEOUT:g}s") from exc
    if done.returncode != 0:
        detail = trim(done.stderr.decode("utf-8", "replace") or done.stdout.decode("utf-8", "replace"))
        raise TetherError(f"git {args[0]} failed (exit {done.returncode}): {detail}")
    return done.stdout.decode("utf-8", "replace").strip()


def _repo_dir_name(name: str) -> str:
    parts = PurePosixPath(name).parts
    if not name or name.startswith("/") or any(p in ("..", ".") for p in parts) or name.startswith("-"):
        raise TetherError(f"invalid repository name: {name!r}")
    return name if name.endswith(".git") else f"{name}.git"


class _BodyTooLarge(Exception):
    pass


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    """Authenticates, reads the request body, and hands the request to ``git http-backend``."""

    protocol_version = "HTTP/1.1"  # needed for chunked request bodies and Expect: 100-continue
    server: _Server

    def parse_request(self) -> bool:
        """Parse as usual, then record the request (any method) so tests can count them."""
        parsed = super().parse_request()
        if parsed:
            self.server.record(self.command, self.path)
        return parsed

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("git-http %s - %s", self.address_string(), format % args)

    def _serve(self) -> None:
        self.close_connection = True  # responses are delimited by closing the connection
        user = self._authenticate()
        if user is False:
            return
        split = urlsplit(self.path)
        path_info = unquote(split.path)
        if ".." in PurePosixPath(path_info).parts:
            self._plain(HTTPStatus.NOT_FOUND, "not found\n")
            return
        try:
            with tempfile.TemporaryFile() as body:
                length = self._read_body(body)
                body.seek(0)
                if self.command == "POST" and path_info.endswith(_RECEIVE_PACK):
                    self.server.before_receive_pack(path_info.removesuffix(_RECEIVE_PACK))
                self._run_backend(path_info, split.query, user, body, length)
        except _BodyTooLarge:
            self._plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large\n")
        except _BadRequest as exc:
            self._plain(HTTPStatus.BAD_REQUEST, f"{exc}\n")

    def _authenticate(self) -> str | Literal[False] | None:
        """The user name, None when the server is anonymous, or False after answering 401."""
        expected = self.server.credentials
        if expected is None:
            return None
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, sep, password = "", "", ""
            if (
                sep
                and hmac.compare_digest(user.encode(), expected[0].encode())
                and hmac.compare_digest(password.encode(), expected[1].encode())
            ):
                return user
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="tether-git", charset="UTF-8"')
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "13")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"unauthorized\n")
        return False

    def _read_body(self, sink: IO[bytes]) -> int:
        limit = self.server.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(sink, limit)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        try:
            remaining = int(raw)
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if remaining < 0:
            raise _BadRequest("bad Content-Length")
        if remaining > limit:
            raise _BodyTooLarge
        self._copy_exactly(remaining, sink)
        return remaining

    def _copy_exactly(self, size: int, sink: IO[bytes]) -> None:
        """Copy ``size`` bytes of the request body to ``sink``, in bounded chunks."""
        while size:
            chunk = self.rfile.read(min(size, _COPY_CHUNK))
            if not chunk:
                raise _BadRequest("request body ended early")
            sink.write(chunk)
            size -= len(chunk)

    def _read_chunked(self, sink: IO[bytes], limit: int) -> int:
        total = 0
        while True:
            line = self.rfile.readline(_MAX_LINE)
            if not line.endswith(b"\n"):
                raise _BadRequest("bad chunk header")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("bad chunk size") from None
            if size < 0:
                raise _BadRequest("bad chunk size")
            if size == 0:
                break
            total += size
            if total > limit:
                raise _BodyTooLarge
            self._copy_exactly(size, sink)
            if self.rfile.readline(_MAX_LINE).strip():
                raise _BadRequest("missing CRLF after chunk")
        for _ in range(_MAX_CGI_HEADERS):  # trailers, ignored
            if not self.rfile.readline(_MAX_LINE).strip():
                return total
        raise _BadRequest("too many trailers")

    def _cgi_env(self, path_info: str, query: str, user: str | None, length: int) -> dict[str, str]:
        server = self.server
        env = git_env(
            server.home,
            {
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_SOFTWARE": "tether-gitserver",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path_info,
                "QUERY_STRING": query,
                "REMOTE_ADDR": self.client_address[0],
                "CONTENT_LENGTH": str(length),
            },
        )
        if user:
            env["REMOTE_USER"] = user
            env["AUTH_TYPE"] = "Basic"
        for header, variable in (
            ("Content-Type", "CONTENT_TYPE"),
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "HTTP_GIT_PROTOCOL"),
        ):
            value = self.headers.get(header)
            if value:
                env[variable] = value
        return env

    def _run_backend(self, path_info: str, query: str, user: str | None, body: IO[bytes], length: int) -> None:
        env = self._cgi_env(path_info, query, user, length)
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                ["git", "http-backend"],
                stdin=body,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
                start_new_session=True,
            )
            timer = threading.Timer(self.server.cgi_timeout, _kill_group, (process,))
            timer.daemon = True
            timer.start()
            try:
                assert process.stdout is not None
                self._relay(process.stdout)
            except (BrokenPipeError, ConnectionResetError):
                _kill_group(process)
            finally:
                timer.cancel()
                if process.stdout is not None:
                    process.stdout.close()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    _kill_group(process)
                    process.wait()
            if process.returncode:
                errors.seek(0)
                text = errors.read(4000).decode("utf-8", "replace")
                log.warning("git http-backend exit %s for %s: %s", process.returncode, path_info, text.strip())

    def _relay(self, stdout: IO[bytes]) -> None:
        status, reason = 200, "OK"
        headers: list[tuple[str, str]] = []
        for _ in range(_MAX_CGI_HEADERS):
            line = stdout.readline(_MAX_LINE)
            if not line:
                self._plain(HTTPStatus.BAD_GATEWAY, "git http-backend produced no response\n")
                return
            text = line.decode("latin-1").rstrip("\r\n")
            if not text:
                break
            name, _, value = text.partition(":")
            value = value.strip()
            if name.lower() == "status":
                code, _, reason = value.partition(" ")
                status = int(code)
            else:
                headers.append((name, value))
        self.send_response(status, reason or None)
        for name, value in headers:
            if name.lower() not in ("connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        while chunk := stdout.read(_COPY_CHUNK):
            self.wfile.write(chunk)
        self.wfile.flush()

    def _plain(self, status: HTTPStatus, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    home: Path
    credentials: tuple[str, str] | None
    max_body_bytes: int
    cgi_timeout: float
    before_receive_pack: Callable[[str], None]

    def server_activate(self) -> None:
        self.counter_lock = threading.Lock()
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.counter_lock:
            self.connections += 1
        super().process_request(request, client_address)

    def record(self, method: str, path: str) -> None:
        with self.counter_lock:
            self.requests.append((method, path))


class GitHttpServer:
    """Serve every bare repository under ``root`` over smart HTTP on 127.0.0.1.

    With ``username`` and ``password`` every request needs HTTP basic auth; without, it is
    anonymous and still accepts pushes.

    With ``webhook_url``, every repository under ``root`` (made by ``create_repo``, there before
    the server started, or put there later by any other means) sends a GitHub push event there
    for each pushed ref, signed with ``webhook_secret`` when one is given. ``set_webhook`` changes
    both at any time. The secret is kept only in each repository's ``tether-webhook.json`` (mode
    0600, never served over HTTP) and in this object.
    """

    def __init__(
        self,
        root: Path,
        username: str | None = None,
        password: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        cgi_timeout: float = DEFAULT_CGI_TIMEOUT,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise TetherError("GitHttpServer needs both username and password, or neither")
        self._webhook_lock = threading.RLock()
        self._webhook: tuple[str, str | None] | None = None
        self._hooked: dict[Path, tuple[str, str | None]] = {}  # bare repository -> the webhook it was given
        self._check_webhook(webhook_url, webhook_secret)
        if webhook_url is not None:
            self._webhook = (webhook_url, webhook_secret or None)
        self.root = Path(root)
        self.username = username
        self.password = password
        self._host = host
        self._port = port
        self._max_body = max_body_bytes
        self._cgi_timeout = cgi_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._private: Path | None = None
        self._repos: dict[str, LocalRepo] = {}

    def start(self) -> GitHttpServer:
        if self._server is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        self._private = Path(tempfile.mkdtemp(prefix="tether-gitserver-"))
        (self._private / "home").mkdir()
        (self._private / "clones").mkdir()
        askpass = self._private / "askpass.sh"
        askpass.write_text(_ASKPASS)
        askpass.chmod(0o700)
        server = _Server((self._host, self._port), _Handler)
        server.root = self.root
        server.home = self._private / "home"
        server.credentials = (self.username, self.password) if self.username is not None else None  # type: ignore[assignment]
        server.max_body_bytes = self._max_body
        server.cgi_timeout = self._cgi_timeout
        server.before_receive_pack = self._hook_before_push
        self._server = server
        self._sync_hooks()  # repositories already under root: given this server's webhook, or none
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="tether-gitserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            with self._webhook_lock:  # a push through file:// after the stop must not call out
                for bare in list(self._hooked):
                    try:
                        githook.uninstall(bare)
                    except OSError as exc:
                        log.warning("git server: could not remove the webhook of %s: %s", bare, exc)
                self._hooked.clear()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None
        self._repos.clear()

    def __enter__(self) -> GitHttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise TetherError("git server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def connections(self) -> int:
        """TCP connections accepted since the server started (malformed requests included)."""
        if self._server is None:
            raise TetherError("git server is not running")
        with self._server.counter_lock:
            return self._server.connections

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every HTTP request received since the server started, in order."""
        if self._server is None:
            raise TetherError("git server is not running")
        with self._server.counter_lock:
            return list(self._server.requests)

    @property
    def webhook_url(self) -> str | None:
        """Where pushes are announced (None: nowhere)."""
        with self._webhook_lock:
            return self._webhook[0] if self._webhook else None

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        """Announce every later push, in every repository here, to ``url`` (None: to nobody).

        Existing repositories follow at once; before ``start`` this only sets what ``start`` installs.
        """
        self._check_webhook(url, secret)
        with self._webhook_lock:
            self._webhook = (url, secret or None) if url is not None else None
            if self._server is not None:
                self._sync_hooks()

    @staticmethod
    def _check_webhook(url: str | None, secret: str | None) -> None:
        if url is None:
            if secret:
                raise TetherError("a webhook secret needs a webhook URL")
            return
        try:
            githook.check_url(url)
        except githook.WebhookError as exc:
            raise TetherError(str(exc)) from None
        _check_hook_interpreter()

    def _sync_hooks(self) -> None:
        """Give every repository under root the current webhook, or take Tether's hook away."""
        with self._webhook_lock:
            for bare in _bare_repositories(self.root):
                self._hook(bare)

    def _hook(self, bare: Path) -> None:
        with self._webhook_lock:
            webhook = self._webhook
            if webhook is None:
                if self._hooked.pop(bare, None) is not None or (bare / githook.CONFIG_NAME).exists():
                    try:
                        githook.uninstall(bare)
                    except OSError as exc:
                        log.warning("git server: could not remove the webhook of %s: %s", bare, exc)
                return
            if self._hooked.get(bare) == webhook:
                return
            clone_url = f"{self.base_url}/{bare.relative_to(self.root).as_posix()}"
            try:
                githook.install(bare, githook.HookConfig(url=webhook[0], secret=webhook[1], clone_url=clone_url))
            except (githook.WebhookError, OSError) as exc:  # a push goes on without its webhook
                log.warning("git server: no webhook for %s: %s", bare, exc)
                return
            self._hooked[bare] = webhook

    def _hook_before_push(self, repo_path: str) -> None:
        """Called before each push: a repository made behind the server's back gets the webhook too."""
        if self._webhook is None and not self._hooked:
            return
        relative = repo_path.strip("/")
        if not relative:
            return
        root = self.root.resolve()
        for candidate in (relative, f"{relative}.git"):
            bare = (self.root / candidate).resolve()
            if bare.is_relative_to(root) and bare != root and _is_bare_repository(bare):
                self._hook(self.root / bare.relative_to(root))
                return

    def url_for(self, name: str) -> str:
        """Clone URL of repository ``name`` (``.git`` is added when missing); never carries credentials."""
        return f"{self.base_url}/{_repo_dir_name(name)}"

    @property
    def askpass_env(self) -> dict[str, str]:
        """Variables that make git answer this server's auth prompt without a terminal or argv."""
        if self._private is None:
            raise TetherError("git server is not running")
        env = {"GIT_ASKPASS": str(self._private / "askpass.sh")}
        if self.username is not None and self.password is not None:
            env["TETHER_GIT_USERNAME"] = self.username
            env["TETHER_GIT_PASSWORD"] = self.password
        return env

    def git_env(self) -> dict[str, str]:
        """A complete environment for running git against this server (isolated HOME, askpass)."""
        if self._private is None:
            raise TetherError("git server is not running")
        return git_env(self._private / "home", self.askpass_env)

    def create_repo(self, name: str, from_dir: Path | None = None) -> LocalRepo:
        """Create bare repository ``name`` and a working clone; commit ``from_dir``'s files if given."""
        if self._private is None:
            raise TetherError("git server is not running")
        dir_name = _repo_dir_name(name)
        bare = self.root / dir_name
        if bare.exists():
            raise TetherError(f"repository {name!r} already exists")
        env = self.git_env()
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git(["init", "--quiet", "--bare", f"--initial-branch={DEFAULT_BRANCH}", str(bare)], env=env)
        for key, value in _BARE_CONFIG.items():
            _git(["config", key, value], env=env, cwd=bare)
        self._hook(bare)
        work = self._private / "clones" / dir_name.removesuffix(".git")
        work.parent.mkdir(parents=True, exist_ok=True)
        _git(["init", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(work)], env=env)
        _git(["remote", "add", "origin", self.url_for(name)], env=env, cwd=work)
        repo = LocalRepo(name=name, path=work, bare_path=bare, url=self.url_for(name), env=env)
        self._repos[name] = repo
        if from_dir is not None:
            repo.commit("initial import", copy_tree=from_dir)
        return repo


def _is_bare_repository(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _bare_repositories(root: Path) -> Iterator[Path]:
    """Every bare repository under ``root`` (not looking inside one)."""
    for directory, subdirs, _ in os.walk(root):
        here = Path(directory)
        if _is_bare_repository(here) and here != root:
            subdirs.clear()
            yield here


_interpreter_checked = False


def _check_hook_interpreter() -> None:
    """The hook runs ``tether.devcluster.githook`` with this interpreter: make sure it can, once."""
    global _interpreter_checked
    if _interpreter_checked:
        return
    done = subprocess.run(
        [sys.executable, "-I", "-c", "import tether.devcluster.githook"],
        env=base_env(),
        capture_output=True,
        timeout=GIT_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        detail = trim(done.stderr.decode("utf-8", "replace"))
        raise TetherError(f"{sys.executable} cannot import the webhook hook's module: {detail}")
    _interpreter_checked = True


class LocalRepo:
    """A working clone of a repository on a ``GitHttpServer``; every change is pushed at once."""

    def __init__(self, *, name: str, path: Path, bare_path: Path, url: str, env: Mapping[str, str]) -> None:
        self.name = name
        self.path = path
        self.bare_path = bare_path
        self.url = url
        self._env = dict(env)
        self._branch = DEFAULT_BRANCH

    @property
    def branch(self) -> str:
        return self._branch

    def git(self, *args: str) -> str:
        """Run git in the working clone with the server's isolated environment; stdout, stripped."""
        return _git(list(args), env=self._env, cwd=self.path)

    @property
    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def switch(self, branch: str, *, create: bool = True) -> None:
        """Make ``branch`` the one later commits go to (created from the current HEAD if new)."""
        if create:
            self.git("checkout", "--quiet", "-B", branch)
        else:
            self.git("checkout", "--quiet", branch)
        self._branch = branch

    def commit(
        self,
        message: str,
        files: Mapping[str, str | bytes | None] | None = None,
        copy_tree: Path | None = None,
    ) -> str:
        """Overlay ``copy_tree``, write ``files`` (None deletes), commit everything, push; the new sha.

        A commit is made even when nothing changed, so every call yields a new sha.
        """
        if copy_tree is not None:
            shutil.copytree(copy_tree, self.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
        for rel, content in (files or {}).items():
            target = self._inside(rel)
            if content is None:
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "--no-verify", "-m", message)
        self.git("push", "--quiet", "origin", f"HEAD:refs/heads/{self._branch}")
        return self.head

    def tag(self, name: str, message: str | None = None) -> str:
        """Tag HEAD (annotated when ``message`` is given) and push the tag; the tagged commit sha."""
        if message is None:
            self.git("tag", name)
        else:
            self.git("tag", "-a", name, "-m", message)
        self.git("push", "--quiet", "origin", f"refs/tags/{name}")
        return self.head

    def _inside(self, rel: str) -> Path:
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts or pure.parts[0] == ".git":
            raise TetherError(f"file path must stay inside the repository: {rel!r}")
        return self.path.joinpath(*pure.parts)
