"""What to crawl: parse a SOURCE (path, clone URL, OWNER/NAME) and open it as a pygit2 repository.

Clone URLs and GitHub repositories are kept as bare mirrors in a cache folder, cloned once and
fetched incrementally afterwards. Credentials never become part of a URL, a path or a message.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import time
import urllib.parse
from dataclasses import dataclass, field

import pygit2
from pygit2.enums import RepositoryOpenFlag

from ghframes.crawl.discover import parse_owner_name
from ghframes.errors import GhframesError
from ghframes.store.identity import with_location, without_location
from ghframes.store.shards import safe_name

URL_SCHEMES = ("https://", "http://", "git://", "file://", "ssh://")
# `git@host:owner/name.git`, the scp-like form ssh clone URLs usually take.
SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
MIRROR_REFSPEC = "+refs/heads/*:refs/heads/*"
# A clone in progress is `<mirror>.partial-<host>-<pid>`: this machine, so that a shared cache
# (NFS on a cluster) can tell whose it is, and this process, so that one left by a killed clone
# can be told from a live one.
HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"
# Another machine's process cannot be checked: its partial clone counts as abandoned once
# nothing in it has changed for this long (seconds).
ABANDONED_AFTER_S = 24 * 3600


@dataclass(frozen=True)
class Source:
    """One repository to crawl.

    `spec` is what the user gave; `repo` the identity written into every row (`github.com/o/n`,
    `host/path`, or `local-HASH/NAME` for a local repository without a remote other than a
    file:// one, see `local_identity`); `location` a local path or a credential-free URL.
    """

    spec: str
    kind: str  # "path", "url" or "github"
    repo: str
    location: str
    default_branch: str | None = None
    metadata: dict = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """The repository's folder name under DATA/edits: escaped identity plus a hash of it.

        A local repository's is its NAME (the identity without `local-HASH/`) plus a hash of
        its location as given: the folder it had before identities carried a hash, so that
        DATA crawled then is found again (and mined anew under the new identity).
        """
        if self.kind == "path" or self.location.startswith("file://"):
            folder = without_location(self.repo)
            digest = hashlib.sha256(self.location.encode()).hexdigest()[:10]
            return f"{safe_name(folder).rsplit('-', 1)[0]}-{digest}"
        return safe_name(self.repo)


def redact(url: str) -> str:
    """`url` without any user or password, for identities and messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def _url_identity(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return local_identity(urllib.parse.unquote(parts.path))
    path = parts.path.rstrip("/").removesuffix(".git")
    host = (parts.hostname or "").lower()
    return f"{host}{path}" if path.startswith("/") else f"{host}/{path}"


# Folder names that say nothing about the repository (a mirror at `…/owner+name/repo`, a
# checkout at `…/project/src`): such a folder is named with its parent, `owner+name/repo`.
PLACEHOLDER_FOLDERS = frozenset(
    {"repo", "repository", "src", "source", "code", "clone", "mirror", "checkout", "git"}
)


def local_identity(path: str) -> str:
    """`local-HASH/NAME` for the repository at `path` (a folder, or its `.git` folder): NAME
    its folder's name without `.git`, with its parent's for a placeholder name (`owner+name/
    repo`); HASH a short hash of the folder's absolute path (store/identity.py), so that two
    folders of one name are two repositories. Renders leave HASH out: the shell prompt shows
    the folder's name, and a history types the same wherever it was crawled from."""
    folder = os.path.abspath(path).rstrip(os.sep) or os.sep
    if os.path.basename(folder) == ".git":
        folder = os.path.dirname(folder)
    parent, name = os.path.split(folder)
    name = name.removesuffix(".git") or name or "repo"
    if name.lower() in PLACEHOLDER_FOLDERS and os.path.basename(parent):
        name = f"{os.path.basename(parent)}/{name}"
    return with_location(folder, name)


def _path_identity(path: str) -> str:
    """A local repository's identity: its `origin` remote's (`github.com/o/n`), where it has
    one other than a file:// URL; else `local_identity`."""
    try:
        url = pygit2.Repository(path).remotes["origin"].url
    except (KeyError, ValueError, pygit2.GitError):
        url = None
    if url:
        if m := SCP_LIKE.match(url):
            url = f"ssh://{m['user']}@{m['host']}/{m['path']}"
        if url.startswith(URL_SCHEMES) and not url.startswith("file://"):
            return _url_identity(redact(url))
    return local_identity(path)


def github_source(owner: str, name: str, clone_url: str | None = None, **kw) -> Source:
    location = clone_url or f"https://github.com/{owner}/{name}.git"
    return Source(f"{owner}/{name}", "github", f"github.com/{owner}/{name}".lower(), location, **kw)


def parse_source(spec: str) -> Source:
    """Classify `spec`. Local paths win over OWNER/NAME when such a folder exists here."""
    if not spec or spec != spec.strip():
        raise GhframesError(f"{spec!r}: empty or padded source")
    if spec.startswith(URL_SCHEMES):
        parts = urllib.parse.urlsplit(spec)
        if parts.scheme != "file" and not parts.hostname:
            raise GhframesError(f"{redact(spec)}: clone URL has no host")
        if parts.scheme == "file" and not parts.path:
            raise GhframesError(f"{spec}: file URL has no path")
        return Source(redact(spec), "url", _url_identity(spec), spec)
    if m := SCP_LIKE.match(spec):
        url = f"ssh://{m['user']}@{m['host']}/{m['path']}"
        return Source(spec, "url", _url_identity(url), url)
    if os.path.exists(spec):
        return Source(spec, "path", _path_identity(spec), os.path.abspath(spec))
    if owner_name := parse_owner_name(spec):  # raises for a malformed OWNER/NAME
        return github_source(*owner_name)
    raise GhframesError(f"{spec}: no such path")


class _Credentials(pygit2.RemoteCallbacks):
    """Answers credential requests: the ssh agent over ssh; the GitHub token only over https to
    `token_host`, so a server that merely asks for a password (or a redirect) never receives it."""

    def __init__(self, token: str | None, token_host: str | None):
        super().__init__()
        self._token = token
        self._token_host = token_host

    def credentials(self, url, username_from_url, allowed_types):
        if allowed_types & pygit2.enums.CredentialType.SSH_KEY:
            return pygit2.KeypairFromAgent(username_from_url or "git")
        parts = urllib.parse.urlsplit(url)
        if (
            self._token
            and allowed_types & pygit2.enums.CredentialType.USERPASS_PLAINTEXT
            and parts.scheme == "https"
            and parts.hostname == self._token_host
        ):
            return pygit2.UserPass("x-access-token", self._token)
        raise pygit2.Passthrough  # no credentials: libgit2 fails with an authentication error


def _open_local(source: Source) -> pygit2.Repository:
    try:
        return pygit2.Repository(source.location, RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        raise GhframesError(f"{source.spec}: not a git repository") from None


def token_host(source: Source) -> str | None:
    """The one host that may receive the GitHub token when cloning ``source``: the clone URL's
    host for an OWNER/NAME source (github.com, or the Enterprise host the API named), and
    github.com for a clone URL there (private repositories); None for anything else."""
    host = urllib.parse.urlsplit(source.location).hostname
    if source.kind == "github" or host == "github.com":
        return host
    return None


def _mirror(source: Source, cache_dir: str, fetch: bool, token: str | None) -> pygit2.Repository:
    path = os.path.join(cache_dir, source.key + ".git")
    callbacks = _Credentials(token, token_host(source))
    if os.path.isdir(path):
        repo = pygit2.Repository(path)
        if fetch:
            remote = repo.remotes["origin"]
            try:
                remote.fetch(callbacks=callbacks, prune=True)
                heads = remote.list_heads(callbacks=callbacks, connect=False)
            except pygit2.GitError as exc:
                raise GhframesError(f"{source.spec}: fetch failed ({_clean(exc, token)})") from None
            # Follow the remote's default branch if it moved.
            for head in heads:
                if head.name == "HEAD" and head.symref_target:
                    repo.set_head(head.symref_target)
        return repo
    os.makedirs(cache_dir, exist_ok=True)
    # Clone beside the final name and rename: a killed clone never looks like a mirror.
    partial = f"{path}.partial-{HOST}-{os.getpid()}"
    _remove_abandoned_clones(path)
    try:
        pygit2.clone_repository(
            source.location,
            partial,
            bare=True,
            remote=lambda repo, name, url: repo.remotes.create(name, url, MIRROR_REFSPEC),
            callbacks=callbacks,
        )
    except (pygit2.GitError, ValueError, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise GhframesError(f"{source.spec}: clone failed ({_clean(exc, token)})") from None
    repo = pygit2.Repository(partial)
    # The mirror refspec keeps branches under refs/heads: point HEAD at the remote's default.
    origin_head = repo.references.get("refs/remotes/origin/HEAD")
    if origin_head is not None and isinstance(origin_head.target, str):
        repo.set_head(origin_head.target)
    os.replace(partial, path)
    return pygit2.Repository(path)


def remote_head(source: Source, cache_dir: str, token: str | None = None) -> str | None:
    """The commit id the default branch of `source`'s server is at now, asked as `git
    ls-remote` asks it: one round trip, nothing fetched. None where `source` has no mirror in
    `cache_dir` yet, or the server names no default branch (a fetch will tell what it is).

    The branch is the one the source names (a GitHub repository's), else the server's HEAD,
    which is what `_mirror` follows; the credentials are those the fetch would use."""
    path = os.path.join(cache_dir, source.key + ".git")
    if not os.path.isdir(path):
        return None
    callbacks = _Credentials(token, token_host(source))
    try:
        heads = pygit2.Repository(path).remotes["origin"].list_heads(callbacks=callbacks)
    except (pygit2.GitError, KeyError, ValueError, OSError) as exc:
        raise GhframesError(f"{source.spec}: fetch failed ({_clean(exc, token)})") from None
    by_name = {head.name: head for head in heads}
    branch = by_name["HEAD"].symref_target if "HEAD" in by_name else None
    if source.default_branch:
        branch = f"refs/heads/{source.default_branch}"
    head = by_name.get(branch) if branch else None
    return str(head.oid) if head is not None else None


def _remove_abandoned_clones(path: str) -> None:
    """Delete the partial clones of mirror `path` that no live process is still writing.

    Only this mirror's own partial clones are looked at, so tasks cloning other repositories
    into the same cache are never touched. One of this process (an earlier attempt), or of a
    process of this machine that is gone (a killed clone), is removed; one of another machine
    only once it has been left unchanged for `ABANDONED_AFTER_S`.
    """
    folder, prefix = os.path.split(f"{path}.partial-")
    for name in os.listdir(folder):
        if not name.startswith(prefix):
            continue
        host, _, pid = name[len(prefix) :].rpartition("-")
        if not pid.isdigit():
            continue
        partial = os.path.join(folder, name)
        if host in (HOST, ""):  # "": named by pid only, as before the host was added
            abandoned = int(pid) == os.getpid() or not _process_alive(int(pid))
        else:
            abandoned = time.time() - _last_change(partial) > ABANDONED_AFTER_S
        if abandoned:
            shutil.rmtree(partial, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


def _last_change(folder: str) -> float:
    """The newest modification time of `folder` or anything in it (a pack being written).

    A folder that vanishes meanwhile was just renamed or removed by its owner: it counts as new.
    """
    try:
        newest = os.lstat(folder).st_mtime
    except FileNotFoundError:
        return time.time()
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(os.path.join(parent, name)).st_mtime)
            except FileNotFoundError:
                continue
    return newest


def _clean(exc: BaseException, token: str | None) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.replace(token, "***") if token else text


def open_repository(
    source: Source, cache_dir: str, fetch: bool = True, token: str | None = None
) -> pygit2.Repository:
    """The repository behind `source`: opened in place, or a cached bare mirror (cloned or fetched)."""
    if source.kind == "path":
        return _open_local(source)
    return _mirror(source, cache_dir, fetch, token)


def default_head(repo: pygit2.Repository, source: Source) -> pygit2.Commit:
    """The tip of the default branch: the named one if the source knows it, else HEAD."""
    if source.default_branch:
        ref = repo.references.get(f"refs/heads/{source.default_branch}")
        if ref is None:
            raise GhframesError(
                f"{source.spec}: default branch {source.default_branch!r} not found"
            )
        return ref.peel(pygit2.Commit)
    if repo.head_is_unborn or repo.is_empty:
        raise GhframesError(f"{source.spec}: empty repository (no commits on the default branch)")
    try:
        return repo.head.peel(pygit2.Commit)
    except (pygit2.GitError, KeyError):
        raise GhframesError(f"{source.spec}: HEAD does not name a commit") from None
