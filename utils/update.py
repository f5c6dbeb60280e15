"""Update the course from its git repository without losing anything a learner changed.

    python -m utils.update             # keep copies, update, rebuild the labs, say what went where
    python -m utils.update --dry-run   # only say what would happen (it does ask the server what is new)

For a course folder that is a git clone (``git clone``, or ``make start`` in one):

1. ``git fetch`` asks the server what is new. Offline, or if the server cannot be reached,
   the update stops here and nothing has been touched.
2. Every tracked file you changed (a lesson you ran and saved, a lab you filled in, a file you
   deleted), as ``git status`` lists it, is copied to ``backups/<YYYYmmdd-HHMMSS>/<its path>``
   and its committed version is restored, so that git can move to the new version. Files git
   does not track (your own notebooks) are left where they are, unless the update brings a file
   of the same name: then yours is moved to the same backup folder first.
3. ``git merge --ff-only`` moves to the new version (what ``git pull --ff-only`` does after its
   fetch). If that fails, your changed files are put back as they were; the copies stay too.
4. ``python -m utils.labs build`` regenerates the learners' lab notebooks (it keeps dated copies
   of edited ones in ``labs/backups/`` itself).

If you have made commits of your own, the course cannot be fast-forwarded: nothing is changed
and you are told what to do. Not a git clone (a zip download, Colab): you are told how to update.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKUPS = "backups"

# Exit codes: 0 updated or already up to date, 1 could not update (nothing lost), 2 not possible here.
OK, FAILED, NOT_POSSIBLE = 0, 1, 2


class UpdateStopped(RuntimeError):
    """The update cannot go ahead; the message says why and what to do. ``code`` is the exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        self.code = code
        super().__init__(message)


class _GitError(RuntimeError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess) -> None:
        self.stderr = (result.stderr or result.stdout or "").strip()
        super().__init__(f"git {' '.join(args)} failed: {self.stderr}")


def _git(root: Path, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run git in ``root``; never prompt for a password (a prompt would hang a notebook's cell)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and result.returncode != 0:
        raise _GitError(list(args), result)
    return result


@dataclass
class Change:
    """One tracked path that differs from the last commit: ``modified``, ``deleted`` or ``added``."""

    path: str
    state: str


@dataclass
class Plan:
    """What an update would do: where from, where to, and which of your files it keeps."""

    upstream: str
    head: str
    target: str
    incoming: list[str]  # one line per new commit, newest first
    changes: list[Change] = field(default_factory=list)
    in_the_way: list[str] = field(default_factory=list)  # untracked files the update brings too


def _tracked_changes(root: Path) -> list[Change]:
    """Tracked paths that differ from HEAD (staged or not), from ``git status --porcelain -z``."""
    out = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=no").stdout
    entries = out.split("\0")
    changes: list[Change] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        xy, path = entry[:2], entry[3:]
        if "U" in xy or xy in ("AA", "DD"):
            raise UpdateStopped(
                f"{path} has an unfinished merge (git status: {xy}). Finish or abort it first "
                "(`git merge --abort`), then update again."
            )
        if xy[0] in "RC":  # renamed or copied: the next entry is the original path
            original = entries[i]
            i += 1
            changes.append(Change(path, "added"))
            if xy[0] == "R":
                changes.append(Change(original, "deleted"))
            continue
        if "D" in xy:
            changes.append(Change(path, "deleted"))
        elif xy[0] == "A":
            changes.append(Change(path, "added"))
        else:
            changes.append(Change(path, "modified"))
    return changes


def _untracked_in_the_way(root: Path, target: str) -> list[str]:
    """Untracked (not ignored) files at paths the new version adds: git would refuse to overwrite them."""
    untracked = set(_git(root, "ls-files", "--others", "--exclude-standard", "-z").stdout.split("\0")) - {""}
    incoming = set(_git(root, "diff", "--name-only", "-z", "HEAD", target).stdout.split("\0")) - {""}
    return sorted(untracked & incoming)


def _not_a_clone_message(root: Path) -> str:
    return (
        f"{root} is not a git clone of the course (a zip download, or a copy on Colab), so it cannot "
        "update itself. To update: download the course again (or open the notebook again from its "
        "Colab link) into a new folder, then copy across any notebook you changed from this one. "
        "Your files here stay as they are."
    )


def plan(root: Path = ROOT, *, fetch: bool = True) -> Plan:
    """Ask the server what is new (``git fetch``) and return what an update would do.

    Raises :class:`UpdateStopped` with a message for the learner when the folder is not a clone, follows
    no remote branch, cannot reach the server, has an unfinished merge or has commits of its own.
    """
    if shutil.which("git") is None:
        raise UpdateStopped(
            "git is not installed here, so the course cannot update itself. Install git and clone "
            "the course, or download it again into a new folder and copy across any notebook you "
            "changed. Your files here stay as they are.",
            NOT_POSSIBLE,
        )
    top = _git(root, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
        if (root / ".git").exists() and top.returncode != 0:
            raise UpdateStopped(f"git cannot read this clone: {top.stderr.strip()}")
        raise UpdateStopped(_not_a_clone_message(root), NOT_POSSIBLE)
    upstream = _git(root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}", check=False)
    if upstream.returncode != 0:
        branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False).stdout.strip()
        raise UpdateStopped(
            f"The current branch ({branch or 'none'}) follows no branch on the server, so there is "
            "nothing to update from. Go back to the course's branch with `git switch main` "
            "(your changes stay), then update again."
        )
    upstream_name = upstream.stdout.strip()
    changes = _tracked_changes(root)  # refuses an unfinished merge before anything else
    if fetch:
        remote = upstream_name.split("/", 1)[0]
        fetched = _git(root, "fetch", "--quiet", remote, check=False)
        if fetched.returncode != 0:
            url = _git(root, "remote", "get-url", remote, check=False).stdout.strip() or remote
            raise UpdateStopped(
                f"Could not reach the course's server ({url}): are you offline? Nothing has been "
                f"changed. Try again when you are online. (git said: {fetched.stderr.strip()[:300]})"
            )
    head = _git(root, "rev-parse", "HEAD").stdout.strip()
    target = _git(root, "rev-parse", "@{u}").stdout.strip()
    own = _git(root, "rev-list", "--oneline", "@{u}..HEAD").stdout.splitlines()
    incoming = _git(root, "log", "--format=%h %s", "HEAD..@{u}").stdout.splitlines()
    if own and incoming:
        raise UpdateStopped(
            f"You have {len(own)} commit(s) of your own that are not on the server ({own[0]} ...), so "
            "the course cannot simply move forward. Nothing has been changed. Either keep your "
            "work in a new folder (`git clone` the course again there), or combine the two with "
            "`git pull --rebase` if you know git."
        )
    result = Plan(upstream_name, head, target, incoming)
    if incoming:
        result.changes = changes
        result.in_the_way = _untracked_in_the_way(root, target)
    return result


def _backup_folder(root: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = root / BACKUPS / stamp
    n = 1
    while folder.exists():
        folder = root / BACKUPS / f"{stamp}-{n}"
        n += 1
    return folder


def _fast_forward(root: Path, target: str) -> None:
    _git(root, "merge", "--ff-only", "--quiet", target)


def _rebuild_labs(root: Path, say: Callable[[str], None]) -> bool:
    """Run the new version's ``python -m utils.labs build``; return True if it worked."""
    if not (root / "utils" / "labs.py").exists():
        return True
    result = subprocess.run(
        [sys.executable, "-m", "utils.labs", "build"], cwd=root, capture_output=True, text=True, timeout=300
    )
    for line in result.stdout.splitlines():
        say(f"  {line}")
    if result.returncode != 0:
        say(f"Rebuilding the labs failed:\n{result.stderr.strip()[-2000:]}\nRun `make labs` to try again.")
        return False
    return True


def update(root: Path = ROOT, *, dry_run: bool = False, say: Callable[[str], None] = print) -> int:
    """Update the course in ``root`` keeping copies of everything the learner changed; return an exit code.

    See the module's docstring for the steps. ``dry_run`` fetches, then only reports.
    """
    root = Path(root).resolve()
    try:
        p = plan(root)
    except UpdateStopped as error:
        say(str(error))
        return error.code
    if not p.incoming:
        say(f"The course is up to date ({p.head[:7]}, as {p.upstream}). Nothing was changed.")
        return OK

    say(f"{len(p.incoming)} new commit(s) on {p.upstream}:")
    for line in p.incoming[:20]:
        say(f"  {line}")
    if len(p.incoming) > 20:
        say(f"  ... and {len(p.incoming) - 20} more")
    folder = _backup_folder(root)
    rel = folder.relative_to(root)
    if dry_run:
        if p.changes or p.in_the_way:
            say(f"An update would keep your versions of these files in {rel}/ first:")
            for c in p.changes:
                say(f"  {c.path} ({'deleted: it would be restored' if c.state == 'deleted' else c.state})")
            for path in p.in_the_way:
                say(f"  {path} (not tracked; the update brings a file of the same name)")
        else:
            say("You have changed no file of the course: nothing would need keeping.")
        say("Dry run: nothing was changed. Run without --dry-run to update.")
        return OK

    # 1. Copies of everything that is about to be reset or moved.
    kept: list[tuple[str, Path]] = []
    for c in p.changes:
        source = root / c.path
        if c.state != "deleted" and source.is_file():
            destination = folder / c.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            kept.append((c.path, destination))
    # 2. The committed versions back, so git can move forward.
    paths = [c.path for c in p.changes]
    if paths:
        _git(root, "reset", "--quiet", "--", *paths)  # unstage
        committed = [c.path for c in p.changes if c.state != "added"]
        if committed:
            _git(root, "checkout", "--quiet", "HEAD", "--", *committed)
    in_the_way = _untracked_in_the_way(root, p.target)  # now including files unstaged above
    moved = []
    for path in in_the_way:
        destination = folder / path
        if not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / path, destination)
            kept.append((path, destination))
        (root / path).unlink()
        moved.append(path)
    # 3. Move forward; on failure put everything back.
    try:
        _fast_forward(root, p.target)
    except (_GitError, subprocess.SubprocessError) as error:
        for path, copy in kept:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(copy, target)
        for c in p.changes:
            if c.state == "deleted":
                (root / c.path).unlink(missing_ok=True)
        say(
            f"The update failed ({getattr(error, 'stderr', error)}). Your files are back as they "
            f"were, and copies are also in {rel}/. Nothing was lost; ask for help with the message above."
        )
        return FAILED
    new_head = _git(root, "rev-parse", "--short", "HEAD").stdout.strip()
    say(f"Updated the course from {p.head[:7]} to {new_head}.")
    # 4. The labs, by the new version's own code.
    say("Rebuilding the lab notebooks:")
    labs_ok = _rebuild_labs(root, say)
    if kept:
        say(f"Your versions of {len(kept)} file(s) are kept in {rel}/:")
        for path, copy in kept:
            say(f"  {path}  ->  {copy.relative_to(root)}")
        say("Open a kept copy to carry on with your work, or copy it back over the new version.")
    deleted = [c.path for c in p.changes if c.state == "deleted"]
    if deleted:
        say(f"Restored {len(deleted)} file(s) you had deleted: {', '.join(deleted)}")
    if not kept and not deleted:
        say("You had changed no file of the course: nothing needed keeping.")
    say(
        "Notebooks open in Jupyter still show the old version: close them without saving "
        "(saving would write the old version over the new one), then open them again."
    )
    return OK if labs_ok else FAILED


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m utils.update [--dry-run] [--root PATH]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m utils.update",
        description="Update the course (a git clone) to the newest version, keeping a copy of every "
        "file you changed in backups/<date-time>/ first, then rebuild the labs.",
    )
    parser.add_argument("--dry-run", action="store_true", help="only say what would happen")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course folder (default: this one)")
    args = parser.parse_args(argv)
    return update(args.root, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
