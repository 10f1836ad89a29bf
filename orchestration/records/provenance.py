"""Git provenance: record the exact code state of a ``Tasks.py`` folder, rebuild it, diff two.

A run record must name the code that produced it, uncommitted edits and new files included, so
``diff`` and ``rerun`` still work after the user's tree has moved on. Git runs only with fixed
argument lists: nothing read from a config or a record becomes a git option, paths come after
``--`` (or are absolute), and commits are checked to be hex before git sees them. GitPython is
imported inside the functions so that importing this module stays cheap.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..exceptions import ProvenanceError
from ..fsutil import pid_alive

if TYPE_CHECKING:
    import git

FILE_CAP = 5 * 1024 * 1024
TOTAL_CAP = 50 * 1024 * 1024
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# Neutralise user diff settings (external tools, colour, prefixes) that would corrupt a patch.
_DIFF = ("--no-ext-diff", "--no-textconv", "--no-color")
_PREFIXES = ("--src-prefix=a/", "--dst-prefix=b/")
# Importing Tasks.py writes bytecode; it must never make a clean tree dirty.
_NO_BYTECODE = (
    ":(exclude,glob)**/__pycache__/**", ":(exclude,glob)**/*.pyc", ":(exclude,glob)**/*.pyo"
)
# Lives in the worktree's private git dir, so it is neither a file of the tree nor of the diff.
_MARKER = "orchestration-materialized"
# Every git command we run: no system config, and none of the commands a repository can
# configure (hooks, an fsmonitor program) -- we only inspect repositories, and a config we
# are asked to ready may point at one we have never seen. As command-line level settings
# they override the repository's own.
_SAFE_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
                 "GIT_CONFIG_COUNT": "3",
                 "GIT_CONFIG_KEY_0": "core.fsmonitor", "GIT_CONFIG_VALUE_0": "false",
                 "GIT_CONFIG_KEY_1": "core.hooksPath", "GIT_CONFIG_VALUE_1": os.devnull,
                 "GIT_CONFIG_KEY_2": "core.untrackedCache", "GIT_CONFIG_VALUE_2": "false"}


@dataclass
class Provenance:
    """The code state of a Tasks.py folder: commit, uncommitted patch, untracked files.

    ``available`` is False (with ``warnings`` saying why) when there is no usable git state:
    the run still runs, but cannot be diffed or rerun exactly.
    """

    available: bool
    warnings: list[str] = field(default_factory=list)
    repo_root: str | None = None
    tasks_subdir: str = "."
    commit: str | None = None
    branch: str | None = None
    remotes: dict[str, list[str]] = field(default_factory=dict)
    dirty: bool | None = None
    patch: str = ""
    untracked: dict[str, str] = field(default_factory=dict)  # path -> base64 content
    untracked_skipped: list[str] = field(default_factory=list)

    @classmethod
    def unavailable(cls, why: str) -> "Provenance":
        return cls(available=False, warnings=[why])

    def why_missing(self) -> str:
        """The one explanation of "no provenance" every command prints."""
        return " ".join(self.warnings) or "no code state was recorded."

    def to_json(self) -> dict[str, Any]:
        if not self.available:
            return {"available": False, "warnings": list(self.warnings)}
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Provenance":
        """A recorded state; tolerant of records of older versions and of damage (a field of
        the wrong type is caught where it matters: ``_checked`` before any rebuild)."""
        if not isinstance(data, dict):
            return cls.unavailable("the run record holds no code state.")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        known.setdefault("available", False)
        return cls(**known)

    def fingerprint(self) -> str:
        """A hash naming one code state: equal for equal commit, patch and untracked files."""
        state = [self.commit, self.patch, sorted((self.untracked or {}).items())]
        return hashlib.sha256(json.dumps(state).encode()).hexdigest()


class ProvenanceCache:
    """Captures each repository once: a thousand configs from one repo cost one set of git calls.

    With ``max_age`` a capture is reused for that many seconds only: a long-lived worker
    checks the code again at each claim, but a burst of short experiments shares one check.
    """

    def __init__(self, max_age: float | None = None) -> None:
        self._by_root: dict[str, tuple[float, Provenance]] = {}
        self._by_folder: dict[str, tuple[float, Provenance]] = {}  # the last answer per folder
        self.max_age = max_age

    def capture(self, path: str | Path) -> Provenance:
        """The code state of the folder ``path``; never raises for git trouble (the result is
        then unavailable, saying why). Nested values are shared between calls for one
        repository: treat the result as read-only."""
        taken, known = self._by_folder.get(str(path), (float("-inf"), None))
        if known is not None and (self.max_age is None
                                  or time.monotonic() - taken <= self.max_age):
            return known  # not even the repository is opened again (2 ms per claim)
        found = self._capture(path)
        self._by_folder[str(path)] = (time.monotonic(), found)
        return found

    def _capture(self, path: str | Path) -> Provenance:
        folder = Path(path).resolve()
        if folder.is_file():
            folder = folder.parent
        if not folder.is_dir():
            return _unavailable(f"{folder} does not exist")
        try:
            import git
        except ImportError as err:  # GitPython refuses to import when no git executable is found
            return _unavailable(f"git is not usable ({err})")
        try:
            repo = _open(folder, search_parent_directories=True)
        except (git.GitError, OSError):
            return _unavailable(f"{folder} is not inside a git repository")
        with repo:
            if repo.working_tree_dir is None:
                return _unavailable(f"{folder} belongs to a bare git repository")
            root = str(Path(repo.working_tree_dir).resolve())
            taken, base = self._by_root.get(root, (float("-inf"), None))
            if base is None or (self.max_age is not None
                                and time.monotonic() - taken > self.max_age):
                base = _capture_repo(repo, root)
                self._by_root[root] = (time.monotonic(), base)
        if not base.available:
            return base
        return dataclasses.replace(base, tasks_subdir=folder.relative_to(root).as_posix())


def compare_remote(prov: Provenance, github_repository: str) -> str | None:
    """A warning when no recorded remote is ``github_repository``: the commit may not be there."""
    if not prov.available:
        return None
    wanted = _normalise_remote(github_repository)
    urls = [url for urls in prov.remotes.values() for url in urls]
    if any(_normalise_remote(url) == wanted for url in urls):
        return None
    listed = ", ".join(urls) if urls else "it has none"
    return (
        f"none of the git remotes of {prov.repo_root} ({listed}) is {github_repository}; "
        "the recorded commit may not exist there."
    )


def materialize(prov: Provenance, dest: Path) -> Path:
    """Rebuild a recorded code state in a detached worktree at ``dest``; returns its Tasks folder.

    The user's own working tree is never touched. A ``dest`` that already holds this exact
    state is reused, so retrying after a crash or rerunning is cheap.
    """
    import git

    commit, subdir, files = _checked(prov)
    dest = Path(dest).resolve()  # absolute, so git can never read it as an option
    state_id = prov.fingerprint()
    with _open_recorded(prov) as repo:
        _require_commit(repo, commit)
        if dest.exists() and any(dest.iterdir()):
            marker = _marker_of(dest, repo, commit)
            if marker == state_id:
                return dest / subdir
            if not _abandoned(marker):
                raise ProvenanceError(
                    f"cannot rebuild the recorded code in {dest}: that folder already holds "
                    "something else or another process is building it; remove it or choose "
                    "another folder."
                )
            _discard(repo, dest)  # our own build, cut short by a crash: start again
        created = False
        try:
            repo.git.worktree("add", "--detach", "--", str(dest), commit)
            created = True
            with _open(dest) as tree:
                marker_path = Path(tree.git_dir, _MARKER)
                marker_path.write_text(f"building {socket.gethostname()} {os.getpid()}")
                if prov.patch:
                    _apply(tree, prov.patch)
                _write_files(dest, files)
                marker_path.write_text(state_id)
        except BaseException as err:
            if created:  # never remove a worktree that another process made
                _discard(repo, dest)
            if isinstance(err, git.GitError):
                raise ProvenanceError(
                    f"cannot rebuild commit {commit[:12]} of {prov.repo_root} in {dest}: "
                    f"{_reason(err)}"
                ) from err
            raise
    return dest / subdir


def code_diff(a: Provenance, b: Provenance) -> str:
    """Unified diff from code state ``a`` to ``b``, each being commit + patch + untracked files."""
    for label, prov in (("A", a), ("B", b)):
        if not prov.available:
            return f"no code diff: run {label} has no git provenance ({prov.why_missing()})\n"
    if a.fingerprint() == b.fingerprint():
        return ""

    plain = not any((side.patch, side.untracked) != ("", {}) for side in (a, b))
    if plain and a.repo_root == b.repo_root:
        commit_a, commit_b = _checked(a)[0], _checked(b)[0]
        with _open_recorded(a) as repo:
            _require_commit(repo, commit_a)
            _require_commit(repo, commit_b)
            return repo.git.diff(
                *_DIFF, *_PREFIXES, commit_a, commit_b, "--", strip_newline_in_stdout=False
            )
    with tempfile.TemporaryDirectory(prefix="orchestration-diff-") as tmp:
        built: list[tuple[Provenance, Path]] = []
        try:
            for name, prov in (("a", a), ("b", b)):
                dest = Path(tmp, name).resolve()
                materialize(prov, dest)
                built.append((prov, dest))
            # Folders named a/ and b/ plus --no-prefix give the usual a/Tasks.py b/Tasks.py headers.
            status, out, err = _git_in(tmp).diff(
                "--no-index", *_DIFF, "--no-prefix", "--", "a", "b",
                with_extended_output=True, with_exceptions=False, strip_newline_in_stdout=False,
            )
        finally:
            for prov, dest in built:
                with _open_recorded(prov) as repo:
                    _discard(repo, dest)
    if status > 1:
        raise ProvenanceError(f"cannot compare the two code states: {err.strip() or status}")
    # --no-index names an added file b/x b/x and a deleted one a/x a/x; git diff says a/x b/x.
    out = re.sub(r"(?m)^diff --git [ab]/(.*) [ab]/\1$", r"diff --git a/\1 b/\1", out)
    chunks = re.split(r"(?m)^(?=diff --git )", out)
    return "".join(c for c in chunks if not c.startswith("diff --git a/.git b/.git\n"))


def _capture_repo(repo: git.Repo, root: str) -> Provenance:
    """Run git once per repository: commit, branch, remotes, tracked patch, untracked files."""
    import git

    try:
        # status first: it works without commits, so a failure here means git refuses the repo.
        raw = repo.git.status("--porcelain", "-z", "--untracked-files=all", stdout_as_string=False)
        if not repo.head.is_valid():
            return _unavailable(f"the git repository at {root} has no commits yet "
                                "(commit your code to record it)")
        commit = repo.git.rev_parse("--verify", "HEAD")
        tracked_changed, untracked_paths = _parse_status(raw)
        patch = ""
        if tracked_changed:
            patch = repo.git.diff(
                *_DIFF, "--binary", *_PREFIXES, "HEAD", "--", *_NO_BYTECODE,
                stdout_as_string=False, strip_newline_in_stdout=False,
            ).decode("utf-8", "surrogateescape")  # non-UTF-8 bytes survive a JSON round trip
        remotes = _remotes(repo)
        branch = None if repo.head.is_detached else repo.active_branch.name
    except git.GitError as err:
        reason = _reason(err)
        hint = ""
        if "dubious ownership" in reason:
            hint = f"; if you trust it, run: git config --global --add safe.directory {root}"
        return _unavailable(f"git refused the repository at {root} ({reason}){hint}")
    warnings: list[str] = []
    untracked, skipped = _read_untracked(Path(root), untracked_paths, warnings)
    if (Path(root) / ".gitmodules").exists():
        warnings.append(
            "submodules are recorded only by their commit; edits inside them are not recorded."
        )
    return Provenance(available=True, repo_root=root, commit=commit, branch=branch,
                      remotes=remotes, dirty=tracked_changed or bool(untracked_paths),
                      patch=patch, untracked=untracked, untracked_skipped=skipped,
                      warnings=warnings)


def _parse_status(raw: bytes) -> tuple[bool, list[str]]:
    """(any tracked file changed, untracked paths) from ``status --porcelain -z``, no bytecode."""
    entries = raw.split(b"\0")
    tracked_changed, untracked = False, []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if not entry:
            continue
        code, rel = entry[:2], os.fsdecode(entry[3:])
        if b"R" in code or b"C" in code:
            i += 1  # a rename or copy is followed by its source path
        if _is_bytecode(rel):
            continue
        if code == b"??":
            untracked.append(rel)
        elif code != b"!!":
            tracked_changed = True
    return tracked_changed, untracked


def _is_bytecode(rel: str) -> bool:
    return "__pycache__" in PurePosixPath(rel).parts or rel.endswith((".pyc", ".pyo"))


def _read_untracked(
    root: Path, paths: list[str], warnings: list[str]
) -> tuple[dict[str, str], list[str]]:
    """Base64 contents of regular untracked files, within the per-file and total caps."""
    files: dict[str, str] = {}
    skipped: list[str] = []
    too_big = 0
    total = 0
    for rel in sorted(paths):
        full = root / rel
        # A trailing "/" is a nested repository; a symlink could lead anywhere on the disk.
        if rel.endswith("/") or full.is_symlink() or not full.is_file():
            skipped.append(rel)
            warnings.append(f"untracked {rel} is not a regular file and is not recorded.")
            continue
        try:
            size = full.stat().st_size
            if size > FILE_CAP or total + size > TOTAL_CAP:
                skipped.append(rel)
                too_big += 1
                continue
            data = full.read_bytes()
        except OSError as err:  # removed or unreadable since git listed it
            skipped.append(rel)
            warnings.append(f"untracked {rel} could not be read ({err.strerror}); not recorded.")
            continue
        total += len(data)
        files[rel] = base64.b64encode(data).decode("ascii")
    if too_big:
        warnings.append(
            f"{too_big} untracked file(s) exceed the size caps (5 MiB each, 50 MiB in all) and "
            "are not recorded, so this code state cannot be rebuilt exactly; see untracked_skipped."
        )
    return files, skipped


def _remotes(repo: git.Repo) -> dict[str, list[str]]:
    remotes: dict[str, list[str]] = {}
    for remote in repo.remotes:
        urls = remotes.setdefault(remote.name, [])
        for url in remote.urls:
            if (url := _redact(url)) not in urls:
                urls.append(url)
    return remotes


def _redact(url: str) -> str:
    """Drop credentials from a remote URL: a password or token must not reach a run record.

    http(s) lose the whole user part (tokens are often sent as the user name); other schemes
    (``ssh://bob:PASS@host``) keep the user name, which is not a secret, and lose the password.
    """
    parts = urlsplit(url)
    if "://" not in url or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if parts.scheme in ("http", "https"):
        return parts._replace(netloc=host).geturl()
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}@{host}" if user else host).geturl()


def _normalise_remote(url: str) -> tuple[str, str]:
    """(host, path) so that scp-style, ssh://, https:// and ``owner/name`` forms compare equal."""
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    elif re.match(r"[^/:]+:", url):  # scp-like: [user@]host:path
        head, _, path = url.partition(":")
        host = head.rsplit("@", 1)[-1]
    elif re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", url):  # GitHub shorthand owner/name
        host, path = "github.com", url
    else:  # a local path
        host, path = "", url
    path = path.strip("/").removesuffix(".git").rstrip("/")
    return host.lower(), path


def _checked(prov: Provenance) -> tuple[str, str, dict[PurePosixPath, bytes]]:
    """Commit, Tasks subfolder and decoded untracked files of a record, refusing tampered ones."""
    if not prov.available:
        raise ProvenanceError(f"this run has no git provenance, so its code cannot be rebuilt: "
                              f"{prov.why_missing()}")
    commit = prov.commit
    if not isinstance(commit, str) or not _COMMIT.fullmatch(commit):
        raise ProvenanceError(f"the recorded commit {commit!r} is not a git commit id.")
    subdir = _safe_relative(prov.tasks_subdir, "Tasks folder")
    if not isinstance(prov.patch, str) or not isinstance(prov.untracked, dict):
        raise ProvenanceError(
            "the provenance record is damaged: its patch or untracked files are missing."
        )
    files = {}
    for rel, content in prov.untracked.items():
        path = _safe_relative(rel, "untracked file")
        if str(path) == ".":
            raise ProvenanceError("the provenance record names an untracked file with no path.")
        try:
            files[path] = base64.b64decode(content, validate=True)
        except (binascii.Error, TypeError, ValueError) as err:
            raise ProvenanceError(f"the recorded content of untracked {rel!r} is damaged.") from err
    return commit, str(subdir), files


def _safe_relative(rel: object, what: str) -> PurePosixPath:
    path = PurePosixPath(rel) if isinstance(rel, str) else None
    if path is None or path.is_absolute() or {"..", ".git"} & set(path.parts) or "\0" in rel:
        raise ProvenanceError(
            f"the provenance record names {what} {rel!r}, which is not a plain relative path "
            "inside the repository; the record may have been tampered with."
        )
    return path


def _open(path: str | Path, search_parent_directories: bool = False) -> git.Repo:
    """A repository whose git commands all run with ``_SAFE_GIT_ENV``."""
    import git

    repo = git.Repo(path, search_parent_directories=search_parent_directories,
                    expand_vars=False)
    repo.git.update_environment(**_SAFE_GIT_ENV)
    return repo


def _git_in(folder: str | Path) -> git.Git:
    """A git command runner outside any repository, with ``_SAFE_GIT_ENV``."""
    import git

    runner = git.Git(folder)
    runner.update_environment(**_SAFE_GIT_ENV)
    return runner


def _open_recorded(prov: Provenance) -> git.Repo:
    import git

    root = prov.repo_root
    try:
        return _open(root)
    except (git.GitError, OSError, TypeError) as err:
        raise ProvenanceError(
            f"the git repository {root} recorded for this run is gone or unreadable "
            f"({type(err).__name__}); its code cannot be rebuilt."
        ) from err


def _require_commit(repo: git.Repo, commit: str) -> None:
    import git

    try:
        repo.git.cat_file("-e", f"{commit}^{{commit}}")
    except git.GitError as err:
        raise ProvenanceError(
            f"commit {commit} recorded for this run is not in {repo.working_tree_dir} any more "
            f"({_reason(err)}); was history rewritten? Its code cannot be rebuilt."
        ) from err


def _marker_of(dest: Path, repo: git.Repo, commit: str) -> str | None:
    """The build marker of ``dest`` when it is a worktree of ``repo`` at ``commit``, else None."""
    import git

    try:
        with _open(dest) as tree:
            if (
                tree.working_tree_dir is None
                or Path(tree.working_tree_dir).resolve() != dest
                or Path(tree.common_dir).resolve() != Path(repo.common_dir).resolve()
                or tree.head.commit.hexsha != commit
            ):
                return None
            marker = Path(tree.git_dir, _MARKER)
            return marker.read_text() if marker.is_file() else None
    except (git.GitError, OSError, ValueError):
        return None


def _abandoned(marker: str | None) -> bool:
    """True for the marker of a build whose process died on this host mid-way."""
    fields = (marker or "").split()
    if len(fields) != 3 or fields[0] != "building" or fields[1] != socket.gethostname():
        return False
    return fields[2].isdigit() and not pid_alive(int(fields[2]))


def _apply(tree: git.Repo, patch: str) -> None:
    with tempfile.NamedTemporaryFile("wb", suffix=".patch", delete=False) as tmp:
        tmp.write(patch.encode("utf-8", "surrogateescape"))
    try:
        tree.git.apply("--binary", "--whitespace=nowarn", tmp.name)
    finally:
        os.unlink(tmp.name)


def _write_files(dest: Path, files: dict[PurePosixPath, bytes]) -> None:
    for rel, data in files.items():
        target = dest / rel
        # A symlink committed in the tree must not carry a write outside dest.
        if not target.parent.resolve().is_relative_to(dest) or target.is_symlink():
            raise ProvenanceError(f"refusing to write untracked file {rel} outside {dest}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _discard(repo: git.Repo, dest: Path) -> None:
    """Remove a worktree we made; prune cleans up a registration whose folder is already gone."""
    import git

    try:
        repo.git.worktree("remove", "--force", "--", str(dest))
    except git.GitError:
        pass
    repo.git.worktree("prune")


def _reason(err: Exception) -> str:
    """The line of git's stderr that explains a failure, without GitPython's wrapping."""
    text = str(getattr(err, "stderr", "") or err).strip().removeprefix("stderr:").strip(" '")
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(err).__name__]
    return next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0])


def _unavailable(why: str) -> Provenance:
    return Provenance.unavailable(f"{why}, so this run has no code provenance.")
