"""Execute the course's notebooks in one profile and render them, with their outputs, to a static site.

    python tools/build_site.py                                   # everything, cpu profile, into _site/
    python tools/build_site.py --profile smoke --offline         # what CI builds
    python tools/build_site.py --profile smoke notebooks/0[0-2]*.ipynb labs/lab01*.ipynb   # a subset

Two steps:

1. every notebook is executed in a fresh kernel with nbclient, ``--jobs`` at a time, into a staging
   folder (``_build/site/src``); the repository's notebooks are never written. A notebook that fails
   stops the build with its name, the failing cell and the error, and no site is written;
2. the executed copies are rendered with Sphinx + MyST-NB + the book theme (the engine and look of
   Jupyter Book 1; install them with ``pip install -r requirements-site.txt``) into ``--out``, with
   a generated landing page (the table of lessons and labs) and navigation in course order.

What the static pages show:

- labs are the learner copies (``labs/*.ipynb``, their checks saying "not done yet"), never the
  solutions, so the site does not publish the answers;
- plotly figures are drawn by one local copy of plotly.js (``_static/plotly.min.js``): they stay
  interactive (zoom, hover) and need no network. Maths is typeset by a local copy of MathJax 2.7
  (from the jupyter-server-mathjax package), so the site reads offline too;
- ipywidgets explorers cannot run without a kernel: the page shows the figure the explorer drew at
  its starting values and a note saying how to use it live, instead of a dead widget.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tools` and `utils` importable
    sys.path.insert(0, str(ROOT))

from utils import settings  # noqa: E402

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_NOTE = (
    '<div class="course-widget-note" style="border-left:4px solid #1f77b4;padding:4px 10px;margin:4px 0">'
    "<b>Interactive explorer.</b> Its controls work only in a running notebook (JupyterLab, Colab or "
    "Binder: use the links at the top of the page).{below}</div>"
)


# ----------------------------------------------------------------------------------------------
# Step 1: execute
# ----------------------------------------------------------------------------------------------


def execute(source: str, target: str, timeout: int) -> dict:
    """Execute the notebook ``source`` (in its own folder) and write it, outputs and all, to ``target``.

    Runs in a worker process, through tools/notebook_runner.py: no imitation of a widget front end,
    so what an explorer draws at its starting values lands in the cell's outputs, where a static
    page can show it. Returns the notebook's wall time and, if it failed, the error (which cell).
    """
    import nbformat

    from tools.notebook_runner import run_notebook

    log = Path(target).with_suffix(".kernel.log")  # the kernel's own messages, kept off the terminal
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as kernel_stderr:
        result = run_notebook(Path(source), timeout=timeout, kernel_stderr=kernel_stderr)
    if result.error is None:
        postprocess(result.nb)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(result.nb, target)
    return {"notebook": source, "wall": result.seconds, "error": result.error, "log": str(log)}


def postprocess(nb) -> None:
    """Make the executed notebook's outputs self-contained for a static page (in place)."""
    import plotly.io as pio

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        notes, others = [], []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and PLOTLY_MIME in data:
                fig = pio.from_json(json.dumps(data[PLOTLY_MIME]), skip_invalid=True)
                div = pio.to_html(
                    fig,
                    include_plotlyjs=False,  # the site loads plotly.js once, from _static/
                    full_html=False,
                    config={"displaylogo": False, "responsive": True},
                )
                out["data"] = {"text/html": div, "text/plain": data.get("text/plain", "<plotly figure>")}
            if data and WIDGET_MIME in data:
                out.get("metadata", {}).pop(WIDGET_MIME, None)
                notes.append(out)
            else:
                others.append(out)
        # The note goes first, above the figure the explorer drew when it was built.
        below = " Below: what it drew at its starting settings." if others else ""
        for out in notes:
            out["data"] = {
                "text/html": WIDGET_NOTE.format(below=below),
                "text/plain": "<interactive explorer>",
            }
        if notes:
            cell["outputs"] = notes + others
    nb.metadata.pop("widgets", None)


def run_all(notebooks: list[Path], staging: Path, jobs: int, timeout: int) -> list[dict]:
    """Execute ``notebooks`` ``jobs`` at a time into ``staging``; print one line per notebook."""
    results = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(execute, str(nb), str(staging / nb.relative_to(ROOT)), timeout): nb
            for nb in notebooks
        }
        for future in concurrent.futures.as_completed(futures):
            nb = futures[future]
            try:
                r = future.result()
            except Exception as exc:  # the worker itself died
                r = {"notebook": str(nb), "wall": 0.0, "error": f"{type(exc).__name__}: {exc}"}
            status = "ok" if r["error"] is None else f"FAILED: {r['error']}"
            print(f"  {r['wall']:6.1f} s  {nb.relative_to(ROOT)}  {status}", flush=True)
            results.append(r)
    return results


# ----------------------------------------------------------------------------------------------
# Step 2: render
# ----------------------------------------------------------------------------------------------


def title_of(path: Path) -> str:
    """Return the text of the notebook's first level-1 heading (without its "NN ·" prefix)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return re.sub(r"^(Lab\s+)?\d+[a-z]?\s*·\s*", "", line[2:].strip())
    return path.stem


def readme_intro() -> str:
    """Return the README's first paragraph (what the course is)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.split("\n\n")]
    return next((p for p in paragraphs if p and not p.startswith("#")), "")


def landing_page(lessons: list[Path], labs: list[Path], profile: str, seconds: float) -> str:
    """Return the landing page (MyST markdown): the course table and the hidden navigation tree."""
    # lab05b goes with lesson 05b when the build has it, else with lesson 05 (so a lesson may have two labs)
    numbers = {lesson.name.split("_", 1)[0] for lesson in lessons}
    labs_by_number: dict[str, list[Path]] = {}
    for p in sorted(labs, key=lambda p: p.name):
        if found := re.match(r"lab((\d+)[a-z]?)", p.name):
            key = found.group(1) if found.group(1) in numbers else found.group(2)
            labs_by_number.setdefault(key, []).append(p)
    links = lambda found: ", ".join(f"[{title_of(lab)}](labs/{lab.name})" for lab in found)  # noqa: E731
    rows = []
    for lesson in lessons:
        number = lesson.name.split("_", 1)[0]
        lab_cell = links(labs_by_number.pop(number, []))
        rows.append(f"| {number} | [{title_of(lesson)}](notebooks/{lesson.name}) | {lab_cell} |")
    for number, found in sorted(labs_by_number.items()):  # labs whose lesson is not in this build
        rows.append(f"| {number} | | {links(found)} |")
    when = time.strftime("%Y-%m-%d")
    return "\n".join(
        [
            "# Deep learning with TensorFlow and Keras",
            "",
            readme_intro(),
            "",
            "This site shows every notebook already run, with its outputs, so you can read the course without",
            "running anything. To run a notebook yourself, use the *Open in Colab* or *Open in Binder* link at",
            "its top, or clone the repository and run `make start`.",
            "",
            "| # | lesson | lab |",
            "|---|---|---|",
            *rows,
            "",
            f"Built on {when} with the `{profile}` profile (the notebooks took {seconds:.0f} s to run). "
            + {
                "smoke": "That profile uses tiny data and two epochs, so its numbers and curves only show that "
                "everything runs: they are not the results the lessons describe.",
                "cpu": "That is the profile of a laptop or Binder: the numbers are the ones the lessons describe.",
                "gpu": "That is the full-size profile of a machine with a GPU.",
            }[profile],
            "Interactive explorers (sliders) work only in a running notebook; here they show their starting "
            "figure. The labs are shown as you get them, with their checks saying *not done yet*; their "
            "solutions are not published here.",
            "",
            "```{toctree}",
            ":hidden:",
            ":caption: Lessons",
            "",
            *[f"notebooks/{p.stem}" for p in lessons],
            "```",
            "",
            "```{toctree}",
            ":hidden:",
            ":caption: Labs",
            "",
            *[f"labs/{p.stem}" for p in labs],
            "```",
            "",
        ]
    )


CONF_PY = """\
# Generated by tools/build_site.py for one build; not committed.
project = "Deep learning with TensorFlow and Keras"
author = "the course's authors"
copyright = "the course's authors"
extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"          # tools/build_site.py has executed every notebook already
nb_merge_streams = True
nb_output_stderr = "show"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "misc.highlighting_failure"]
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_js_files = ["plotly.min.js"]
# MathJax 2.7 from the jupyter-server-mathjax package, copied into _static/mathjax: no CDN needed.
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {
    "tex2jax": {
        "inlineMath": [["\\\\(", "\\\\)"]],
        "displayMath": [["\\\\[", "\\\\]"]],
        "processEscapes": True,
        "processClass": "math",
        "ignoreClass": "document",
    },
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web", "imageFont": None},
    "showMathMenu": False,
    "messageStyle": "none",
}
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "home_page_in_toc": True,
}
"""


def render(
    staging: Path, lessons: list[Path], labs: list[Path], out: Path, profile: str, seconds: float
) -> None:
    """Write the Sphinx project into ``staging`` and build it into ``out`` (replaced only on success)."""
    import plotly

    (staging / "_static").mkdir(parents=True, exist_ok=True)
    import jupyter_server_mathjax

    shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", staging / "_static")
    shutil.copytree(
        Path(jupyter_server_mathjax.__file__).parent / "static",
        staging / "_static" / "mathjax",
        ignore=shutil.ignore_patterns("SVG", "localization", "*.md"),  # the HTML-CSS output only
        dirs_exist_ok=True,
    )
    (staging / "conf.py").write_text(CONF_PY, encoding="utf-8")
    (staging / "index.md").write_text(landing_page(lessons, labs, profile, seconds), encoding="utf-8")
    html_dir = staging.parent / "html"
    shutil.rmtree(html_dir, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-q",  # warnings and errors only
        "-d",
        str(staging.parent / "doctrees"),
        str(staging),
        str(html_dir),
    ]
    proc = subprocess.run(cmd, cwd=staging)
    if proc.returncode != 0:
        raise SystemExit(f"Sphinx failed (exit {proc.returncode}); no site written.")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(html_dir), out)


# ----------------------------------------------------------------------------------------------


def select(patterns: list[str]) -> list[Path]:
    """Return the notebooks named by ``patterns`` (paths or globs); default every lesson and lab copy."""
    if not patterns:
        patterns = ["notebooks/*.ipynb", "labs/*.ipynb"]
    found: list[Path] = []
    for pattern in patterns:
        matches = glob.glob(pattern) or glob.glob(str(ROOT / pattern))
        if not matches:
            raise SystemExit(f"No notebook matches {pattern!r}.")
        for m in sorted(matches):
            p = Path(m).resolve()
            if p.parent not in (ROOT / "notebooks", ROOT / "labs"):
                raise SystemExit(f"{m}: the site holds lessons (notebooks/) and lab copies (labs/) only.")
            if p not in found:
                found.append(p)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", help="paths or globs; default notebooks/*.ipynb labs/*.ipynb")
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="the site's folder (default _site/)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument("--offline", action="store_true", help="forbid downloads (COURSE_OFFLINE=1)")
    args = parser.parse_args()
    notebooks = select(args.notebooks)
    lessons = [p for p in notebooks if p.parent.name == "notebooks"]
    labs = [p for p in notebooks if p.parent.name == "labs"]
    # The kernels inherit these. Not COURSE_CHECKS_STRICT: the lab copies must show "not done yet".
    os.environ["COURSE_PROFILE"] = args.profile
    if args.offline:
        os.environ["COURSE_OFFLINE"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    os.environ.pop("COURSE_CHECKS_STRICT", None)
    build = ROOT / "_build" / "site"
    staging = build / "src"
    shutil.rmtree(build, ignore_errors=True)
    staging.mkdir(parents=True)

    start = time.perf_counter()
    print(
        f"Executing {len(notebooks)} notebooks, profile {args.profile}, {args.jobs} at a time "
        f"({'offline' if settings.offline() else 'online'}):",
        flush=True,
    )
    results = run_all(notebooks, staging, args.jobs, args.timeout)
    executed = time.perf_counter() - start
    failed = [r for r in results if r["error"]]
    if failed:
        print(f"\nSite NOT built: {len(failed)} notebook(s) failed:", file=sys.stderr)
        for r in failed:
            print(f"  {Path(r['notebook']).relative_to(ROOT)}: {r['error']}", file=sys.stderr)
            if r.get("log"):
                print(f"    (the kernel's own messages: {r['log']})", file=sys.stderr)
        return 1
    print(f"Executed in {executed:.0f} s. Rendering...", flush=True)
    t = time.perf_counter()
    render(staging, lessons, labs, args.out.resolve(), args.profile, executed)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(
        f"Site written to {args.out}/index.html: {len(notebooks)} pages, {size / 2**20:.1f} MB; "
        f"render {time.perf_counter() - t:.0f} s, total {time.perf_counter() - start:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
