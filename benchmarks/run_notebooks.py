"""Execute the course's notebooks in one profile and print wall time, peak memory and results.

    python benchmarks/run_notebooks.py                 # every lesson and lab solution, cpu profile
    python benchmarks/run_notebooks.py --profile smoke notebooks/01_tensors_and_gradients.ipynb
    python benchmarks/run_notebooks.py --profile gpu --gpu --online   # on a real GPU (.ci/gpu runs this)

Peak memory is the largest resident set of the notebook's kernel (and its children), sampled
every 0.1 s: what an instructor sizes a JupyterHub by. "Results" are the ``checkpoint ·`` lines
a notebook prints as it asserts its claims. Each notebook runs in a fresh kernel, offline, with
the data cache given by COURSE_DATA_DIR (defaults to your normal cache). Exits 1 if any fails.
Outputs are never written back into the notebooks. With ``--gpu`` a last cell, run in the same
kernel, reads TensorFlow's peak GPU memory (``tf.config.experimental.get_memory_info``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
# Appended to each notebook with --gpu: the most memory TensorFlow held on any GPU during the run.
GPU_PROBE = """\
import tensorflow as tf

_gpus = tf.config.list_physical_devices("GPU")
print("gpu-peak ·", max((tf.config.experimental.get_memory_info(f"GPU:{i}")["peak"] for i in range(len(_gpus))), default=0))
"""


def _rss_tree(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(path: Path, timeout: int, gpu: bool = False) -> dict:
    """Execute one notebook; return its wall time, peak memory, results, stderr and error."""
    nb = nbformat.read(path, as_version=4)
    if gpu:
        nb.cells.append(nbformat.v4.new_code_cell(GPU_PROBE))
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    # nbclient imitates a front end for ipywidgets' Output widgets; with the lessons' explorers
    # that imitation intermittently left a finished cell waiting forever (cf. jupyter/nbclient#312).
    # Outputs captured by widgets are not results, so the benchmark does not imitate widgets at all.
    client.comm_open_handlers = {"jupyter.widget": lambda msg: None}
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            km = client.km
            pid = getattr(getattr(km, "provisioner", None), "pid", None) if km else None
            if pid:
                peak = max(peak, _rss_tree(pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    error = None
    sampler.start()
    try:
        client.execute()
    except CellExecutionError as exc:
        error = str(exc).strip().splitlines()[-1][:200]
    except Exception as exc:  # a timeout or a dead kernel: report it, go on with the next
        error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - start
    results, stderr, gpu_peak = [], [], None
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = out.get("text", "")
                if out.get("name") == "stderr":
                    stderr.append(text.strip())
                results += [
                    ln.split("·", 1)[1].strip() for ln in text.splitlines() if ln.startswith("checkpoint ·")
                ]
                gpu_peak = next(
                    (int(ln.split("·", 1)[1]) for ln in text.splitlines() if ln.startswith("gpu-peak ·")),
                    gpu_peak,
                )
    return {
        "notebook": path.name,
        "wall": wall,
        "peak": peak,
        "gpu_peak": gpu_peak,
        "results": results,
        "stderr": stderr,
        "error": error,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb and labs/solutions/*.ipynb"
    )
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--online", action="store_true", help="let notebooks download datasets")
    parser.add_argument("--gpu", action="store_true", help="also report each notebook's peak GPU memory")
    args = parser.parse_args()
    os.environ["COURSE_PROFILE"] = args.profile
    if not args.online:
        os.environ["COURSE_OFFLINE"] = "1"
    os.environ["COURSE_CHECKS_STRICT"] = "1"
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "labs" / "solutions").glob("*.ipynb")
    )
    print(f"profile {args.profile}, {os.cpu_count()} CPU cores, {len(paths)} notebooks\n")
    gpu_column = " peak GPU memory (MB) |" if args.gpu else ""
    print(f"| notebook | wall (s) | peak memory (MB) |{gpu_column} status | results |")
    print("|---|---:|---:|" + ("---:|" if args.gpu else "") + "---|---|")
    failed = 0
    total = 0.0
    for path in paths:
        r = run(path.resolve(), args.timeout, gpu=args.gpu)
        total += r["wall"]
        status = "ok" if not r["error"] else f"FAILED: {r['error']}"
        if r["stderr"]:
            status += f" (stderr: {r['stderr'][0][:80]!r})"
        failed += bool(r["error"])
        gpu_cell = ""
        if args.gpu:
            gpu_cell = " n/a |" if r["gpu_peak"] is None else f" {r['gpu_peak'] / 2**20:.0f} |"
        print(
            f"| {r['notebook']} | {r['wall']:.1f} | {r['peak'] / 2**20:.0f} |{gpu_cell} {status} | "
            f"{'; '.join(r['results'])} |",
            flush=True,
        )
    print(f"\ntotal {total:.1f} s; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
