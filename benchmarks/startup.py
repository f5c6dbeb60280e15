"""Measure what a learner waits for before the first lesson cell: start-up cost of the course.

    python benchmarks/startup.py [--repeat 5]

Prints, as medians over fresh processes:
- a bare `import tensorflow`;
- `import utils` + `utils.env.setup()` (the setup cell), and its ratio to the bare import;
- time to first cell: a fresh Jupyter kernel starting and running the setup cell, and whether
  that cell wrote anything to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tools` importable
    sys.path.insert(0, str(ROOT))

from tools.notebook_runner import run_notebook  # noqa: E402

SETUP = "import utils\n\ncfg = utils.env.setup()"


def _timed(code: str) -> float:
    timer = "import time; _t = time.perf_counter()\n" + code + "\nprint(time.perf_counter() - _t)"
    proc = subprocess.run([sys.executable, "-c", timer], capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def first_cell() -> tuple[float, str]:
    """Return (seconds from kernel start to the setup cell's end, its stderr text)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP)]
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        path = Path(tmp) / "first_cell.ipynb"
        nbformat.write(nb, path)
        # The kernel works in the repository's root, as before (the notebook's folder is a temporary one).
        result = run_notebook(path, timeout=300, cwd=ROOT)
    if result.error:
        raise RuntimeError(f"the setup cell failed: {result.error}")
    return result.seconds, result.stream("stderr")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bare, course, kernel = [], [], []
    stderr = ""
    _timed("import tensorflow")  # warm the file cache once; learners' second runs are warm too
    for _ in range(args.repeat):
        bare.append(_timed("import tensorflow"))
        course.append(_timed("import utils; utils.env.setup(verbose=False)"))
        seconds, err = first_cell()
        kernel.append(seconds)
        stderr += err
    b, c, k = statistics.median(bare), statistics.median(course), statistics.median(kernel)
    print(f"runs: {args.repeat} (medians; min-max in brackets)")
    print(f"bare `import tensorflow`:                 {b:5.2f} s  [{min(bare):.2f}-{max(bare):.2f}]")
    print(f"`import utils; utils.env.setup()`:        {c:5.2f} s  [{min(course):.2f}-{max(course):.2f}]")
    print(f"ratio setup / bare import:                {c / b:5.2f}")
    print(f"time to first cell (kernel start + setup): {k:5.2f} s  [{min(kernel):.2f}-{max(kernel):.2f}]")
    print(f"stderr from the setup cell:               {'none' if not stderr else repr(stderr[:300])}")


if __name__ == "__main__":
    main()
