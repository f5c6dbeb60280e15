"""Execute the course's notebooks in one profile and print wall time, peak memory and results.

    python benchmarks/run_notebooks.py                 # every lesson and lab solution, cpu profile
    python benchmarks/run_notebooks.py --profile smoke notebooks/01_tensors_and_gradients.ipynb
    python benchmarks/run_notebooks.py --profile gpu --gpu --online   # on a real GPU (.ci/gpu runs this)

Peak memory is proportional set size (PSS, tools/memory.py), sampled every 0.1 s: each shared
page is divided among the processes that map it, so TensorFlow's shared libraries count once
however many processes load them. Two columns: the kernel alone, and the kernel with all its
children (tf.distribute workers, data loaders) summed at the same instant: what an instructor
sizes a JupyterHub by. PSS shares pages with processes outside the run too, so measure on an
otherwise idle machine (the output says how many other processes map TensorFlow's libraries when
it starts). Where PSS cannot be read (not Linux) the columns say RSS instead, and the children's
column then counts shared libraries once per process. "Results" are the
``checkpoint ·`` lines a notebook prints as it asserts its claims. Each notebook runs in a fresh
kernel (tools/notebook_runner.py), offline, with the data cache given by COURSE_DATA_DIR (defaults
to your normal cache). Exits 1 if any notebook fails. Outputs are never written back into the
notebooks. With ``--gpu`` a last cell, run in the same kernel, reads TensorFlow's peak GPU memory
(``tf.config.experimental.get_memory_info``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tools` importable
    sys.path.insert(0, str(ROOT))

from tools.memory import MB, processes_mapping  # noqa: E402
from tools.notebook_runner import RunResult, child_env, run_notebook  # noqa: E402

# Appended to each notebook with --gpu: the most memory TensorFlow held on any GPU during the run.
GPU_PROBE = """\
import tensorflow as tf

_gpus = tf.config.list_physical_devices("GPU")
print("gpu-peak ·", max((tf.config.experimental.get_memory_info(f"GPU:{i}")["peak"] for i in range(len(_gpus))), default=0))
"""


def results_of(result: RunResult) -> tuple[list[str], list[str], int | None]:
    """Return the run's checkpoint results, its stderr texts and the GPU peak it printed (or None)."""
    results, gpu_peak = [], None
    for text in result.stream_chunks(None):
        results += [ln.split("·", 1)[1].strip() for ln in text.splitlines() if ln.startswith("checkpoint ·")]
        gpu_peak = next(
            (int(ln.split("·", 1)[1]) for ln in text.splitlines() if ln.startswith("gpu-peak ·")), gpu_peak
        )
    stderr = [text.strip() for text in result.stream_chunks("stderr")]
    return results, stderr, gpu_peak


def header(gpu: bool = False, measure: str = "pss", rss: bool = False) -> str:
    """The table's header and rule lines."""
    name = measure.upper()
    rss_column = " summed RSS kernel + children (MB) |" if rss else ""
    gpu_column = " peak GPU memory (MB) |" if gpu else ""
    return (
        f"| notebook | wall (s) | peak {name} kernel (MB) | peak {name} kernel + children (MB) |"
        f"{rss_column}{gpu_column} status | results |\n"
        "|---|---:|---:|---:|" + ("---:|" if rss else "") + ("---:|" if gpu else "") + "---|---|"
    )


def row(result: RunResult, gpu: bool = False, measure: str = "pss", rss: bool = False) -> str:
    """One notebook's table row (a figure measured otherwise than the header says is labelled)."""
    results, stderr, gpu_peak = results_of(result)
    status = "ok" if result.error is None else f"FAILED: {result.error}"
    if stderr:
        status += f" (stderr: {stderr[0][:80]!r})"
    peak = result.memory
    if peak is None or not peak.samples:
        kernel = tree = summed = "n/a"
    else:
        label = "" if peak.measure == measure else f" ({peak.measure.upper()})"
        kernel, tree = f"{peak.kernel / MB:.0f}{label}", f"{peak.tree / MB:.0f}{label}"
        summed = f"{peak.tree_rss / MB:.0f}"
    rss_cell = f" {summed} |" if rss else ""
    gpu_cell = ""
    if gpu:
        gpu_cell = " n/a |" if gpu_peak is None else f" {gpu_peak / MB:.0f} |"
    return (
        f"| {result.path.name} | {result.seconds:.1f} | {kernel} | {tree} |{rss_cell}{gpu_cell} {status} | "
        f"{'; '.join(results)} |"
    )


def kernel_env(profile: str, online: bool) -> dict[str, str]:
    """The environment each notebook's kernel gets."""
    return child_env(
        COURSE_PROFILE=profile,
        COURSE_OFFLINE=None if online else "1",
        COURSE_CHECKS_STRICT="1",
    )


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument(
        "--rss",
        action="store_true",
        help="also report the peak of RSS summed over the kernel and its children (the old, inflated figure)",
    )
    args = parser.parse_args(argv)
    env = kernel_env(args.profile, args.online)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "labs" / "solutions").glob("*.ipynb")
    )
    print(f"profile {args.profile}, {os.cpu_count()} CPU cores, {len(paths)} notebooks\n")
    others = processes_mapping("libtensorflow_framework", exclude=os.getpid())
    if others:
        print(
            f"Note: {len(others)} other process(es) map TensorFlow's libraries now (pids "
            f"{', '.join(map(str, others[:8]))}{', ...' if len(others) > 8 else ''}). PSS shares those pages "
            "with them, so the memory figures come out lower than on an idle machine.\n"
        )
    measure = None
    failed = 0
    total = 0.0
    for path in paths:
        result = run_notebook(
            path.resolve(),
            env=env,
            timeout=args.timeout,
            memory=True,
            after=[GPU_PROBE] if args.gpu else [],
        )
        if measure is None:  # the header names what the first run could measure
            measure = result.memory.measure if result.memory and result.memory.samples else "pss"
            print(header(args.gpu, measure, args.rss))
        total += result.seconds
        failed += result.error is not None
        print(row(result, args.gpu, measure, args.rss), flush=True)
    print(f"\ntotal {total:.1f} s; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
