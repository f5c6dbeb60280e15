"""Where the course lives, and the two things every notebook carries because of it.

The repository's address is written in exactly one place, ``[tool.dl-course]`` in
``pyproject.toml``. Every notebook carries, generated from it:

- the launch links in its first cell (*Open in Colab*, *Open in Binder*);
- the bootstrap cell just before the setup cell. On Colab it fetches the course's helpers
  (a shallow ``git clone`` of the course next to the notebook, put on ``sys.path``), so
  ``import utils`` works with Colab's own TensorFlow, without a reinstall or a runtime restart,
  and it turns on Colab's widget manager for the widgets and live plots. Anywhere else it does
  nothing.

Moving the course (a fork, a new branch) is one edit in ``pyproject.toml`` followed by::

    python -m utils.course sync     # rewrite the links and bootstrap cells of every notebook
    python -m utils.course check    # exit 1 if any notebook is out of date (the tests do this)

Lab learner copies are generated from ``labs/solutions/``, so ``sync`` rewrites the solutions
and then the learner copies through :mod:`utils.labs` (which keeps a copy of any edited lab).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The first line of the bootstrap cell; it is how the cell is found again.
BOOTSTRAP_MARK = "# Colab only: fetch the course helpers."
LINKS_RE = re.compile(r"\[Open in Colab\]\([^)]*\) · \[Open in Binder\]\([^)]*\)")


@dataclass(frozen=True)
class Repository:
    owner: str  # GitHub owner
    name: str  # GitHub repository name
    branch: str  # the branch learners open

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def clone_url(self) -> str:
        return f"https://github.com/{self.slug}"


def repository(pyproject: Path | None = None) -> Repository:
    """The course's repository, read from ``[tool.dl-course]`` in ``pyproject.toml``."""
    path = pyproject or ROOT / "pyproject.toml"
    with path.open("rb") as f:
        table = tomllib.load(f)["tool"]["dl-course"]
    return Repository(owner=table["owner"], name=table["name"], branch=table["branch"])


def launch_links(rel_path: str, repo: Repository | None = None) -> str:
    """The Markdown line of launch links for the notebook at ``rel_path`` (relative to the repo root)."""
    repo = repo or repository()
    colab = f"https://colab.research.google.com/github/{repo.slug}/blob/{repo.branch}/{rel_path}"
    binder = f"https://mybinder.org/v2/gh/{repo.slug}/{repo.branch}?urlpath=lab/tree/{rel_path}"
    return f"[Open in Colab]({colab}) · [Open in Binder]({binder})"


def bootstrap_source(repo: Repository | None = None) -> str:
    """The code of the bootstrap cell (the same in every notebook)."""
    repo = repo or repository()
    return f'''{BOOTSTRAP_MARK} Anywhere else this cell does nothing.
# It clones the course (not TensorFlow: Colab's own stays) and turns on Colab's widget manager.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    COURSE_DIR = "/content/{repo.name}"
    if not os.path.isdir(COURSE_DIR):
        url = "{repo.clone_url}"
        subprocess.run(["git", "clone", "-q", "--depth=1", "-b", "{repo.branch}", url, COURSE_DIR], check=True)
    if COURSE_DIR not in sys.path:
        sys.path.insert(0, COURSE_DIR)
    from google.colab import output

    output.enable_custom_widget_manager()
'''.rstrip("\n")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _is_setup(cell: dict) -> bool:
    return cell["cell_type"] == "code" and _source(cell).lstrip().startswith("# Setup:")


def notebook_paths(root: Path = ROOT) -> list[Path]:
    """Every notebook that carries links: lessons, lab solutions, generated lab copies, the docs' notebooks."""
    return sorted(
        [
            *root.glob("notebooks/*.ipynb"),
            *root.glob("labs/solutions/*.ipynb"),
            *root.glob("labs/*.ipynb"),
            *root.glob("docs/*.ipynb"),
        ]
    )


def _link_target(path: Path, root: Path) -> str:
    """The path a notebook's links open: a lab solution links to the learner copy, and a lesson's
    exercise source (``labs/solutions/lessonNN_topic.ipynb``) to its lesson, where they are spliced."""
    rel = path.relative_to(root).as_posix()
    if rel.startswith("labs/solutions/lesson"):
        return "notebooks/" + path.name[len("lesson") :]
    return rel.replace("labs/solutions/", "labs/", 1)


def problems(path: Path, root: Path = ROOT, repo: Repository | None = None) -> list[str]:
    """What is out of date in one notebook's links or bootstrap cell (empty when all is well)."""
    repo = repo or repository()
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    found = []
    links = launch_links(_link_target(path, root), repo)
    if not cells or links not in _source(cells[0]):
        found.append(f"the first cell lacks the launch links: {links}")
    setup = next((i for i, c in enumerate(cells) if _is_setup(c)), None)
    if setup is None:
        found.append("no setup cell (a code cell starting '# Setup:')")
    elif setup == 0 or _source(cells[setup - 1]) != bootstrap_source(repo):
        found.append("the cell before the setup cell is not the current bootstrap cell")
    boots = [c for c in cells if _source(c).startswith(BOOTSTRAP_MARK)]
    if len(boots) > 1:
        found.append(f"{len(boots)} bootstrap cells; there must be one")
    return found


def _cell_id(cells: list[dict]) -> str:
    prefix = next((c["id"].rsplit("-", 1)[0] for c in cells if "-" in c.get("id", "")), "nb")
    return f"{prefix}-colab"


def sync_notebook(path: Path, root: Path = ROOT, repo: Repository | None = None) -> bool:
    """Rewrite one notebook's links and bootstrap cell from the repository settings; True if it changed."""
    repo = repo or repository()
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    cells = nb["cells"]
    first = _source(cells[0])
    links = launch_links(_link_target(path, root), repo)
    if LINKS_RE.search(first):
        first = LINKS_RE.sub(lambda _: links, first, count=1)
    else:  # no links yet: put them under the title line
        head, _, rest = first.partition("\n")
        first = f"{head}\n\n{links}\n{rest}"
    cells[0]["source"] = first.splitlines(keepends=True)
    cells[:] = [c for c in cells if not _source(c).startswith(BOOTSTRAP_MARK)]
    setup = next((i for i, c in enumerate(cells) if _is_setup(c)), None)
    if setup is None:
        raise ValueError(
            f"{path}: no setup cell (a code cell starting '# Setup:') to put the bootstrap before"
        )
    boot = {
        "cell_type": "code",
        "execution_count": None,
        "id": _cell_id(cells),
        "metadata": {},
        "outputs": [],
        "source": bootstrap_source(repo).splitlines(keepends=True),
    }
    cells.insert(setup, boot)
    new = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m utils.course", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["sync", "check", "show"])
    args = parser.parse_args(argv)
    repo = repository()
    if args.command == "show":
        print(f"repository {repo.clone_url}, branch {repo.branch}")
        return 0
    if args.command == "check":
        bad = 0
        for path in notebook_paths():
            for problem in problems(path, ROOT, repo):
                bad += 1
                print(f"{path.relative_to(ROOT)}: {problem}")
        if bad:
            print("Run: python -m utils.course sync")
        return 1 if bad else 0
    solutions = [p for p in notebook_paths() if "labs/solutions/" in p.as_posix()]
    lessons = [p for p in notebook_paths() if p.parent.name in ("notebooks", "docs")]
    changed = [p for p in [*lessons, *solutions] if sync_notebook(p, ROOT, repo)]
    for p in changed:
        print(f"updated {p.relative_to(ROOT)}")
    from utils import labs

    labs.main(["build"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
