"""A workshop room without internet: prepare a data folder, copy it, run the lessons on the copy.

1. Write small files in the genuine formats (tests/fixtures/genuine_data.py) and serve them on
   127.0.0.1: the real sources are unreachable from CI.
2. ``python -m utils.data fetch --all`` into a fresh folder, from that mirror
   (``COURSE_DATA_MIRROR``), checked against the mirror's manifest (``COURSE_DATA_CHECKSUMS``).
3. Stop the server, copy the folder elsewhere, delete the original.
4. Cut the network (``unshare -n``, as root; otherwise ``COURSE_OFFLINE=1``), point
   ``COURSE_DATA_DIR`` at the copy, check that ``python -m utils.data status`` lists every dataset
   as available, and run, in the smoke profile, every lesson and lab solution that loads a
   download dataset. Each must finish without error, print only real-dataset descriptions
   ("Using MNIST's ..."), never a stand-in's ("... using ... instead"), and every image dataset
   left in its namespace must be the real one (``stand_in`` False).

    .ci/offline                      # every notebook that loads a download dataset
    .ci/offline notebooks/03_neural_networks_with_keras.ipynb   # just these
    .ci/offline --keep               # keep the temporary folders and print where they are

(``.ci/offline`` runs ``python -m tools.offline_rehearsal`` with the course's Python.) Exits 0 when
everything held, 1 otherwise; prints the time of each step.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from utils import settings

ROOT = Path(__file__).resolve().parents[1]

LOADERS = re.compile(
    r"\b(load_images|load_mnist|load_fashion_mnist|load_cifar10|load_imdb|imdb_word_index|is_cached)\b"
)

# Appended to each notebook: report every dataset object left in the kernel's namespace.
PROBE = """
import json as _probe_json

_probe = []
for _probe_key, _probe_value in list(globals().items()):
    if hasattr(_probe_value, "x_train") and hasattr(_probe_value, "name") and not isinstance(_probe_value, type):
        _probe.append(
            {
                "variable": _probe_key,
                "name": str(_probe_value.name),
                "stand_in": getattr(_probe_value, "stand_in", None),
                "shape": list(getattr(_probe_value.x_train, "shape", ())),
            }
        )
print("offline-probe " + _probe_json.dumps(_probe))
"""


def _source(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c.get("source", "")) for c in nb["cells"] if c.get("cell_type") == "code")


def notebooks_that_load_downloads(root: Path = ROOT) -> list[Path]:
    """Lessons and lab solutions whose code (or whose lab's checks module) loads a download dataset."""
    found = []
    for path in sorted((root / "notebooks").glob("*.ipynb")) + sorted(
        (root / "labs" / "solutions").glob("*.ipynb")
    ):
        text = _source(path)
        lab = re.match(r"(lab\d+)", path.name)
        checks = root / "utils" / "checks" / f"{lab.group(1)}.py" if lab else None
        if (
            checks is not None
            and checks.exists()
            and re.search(rf"checks\.{lab.group(1)}\b|checks import {lab.group(1)}\b", text)
        ):
            text += checks.read_text(encoding="utf-8")
        if LOADERS.search(text):
            found.append(path)
    return found


@dataclass
class Verdict:
    """How one notebook's run went: what is wrong (empty: it used the copied data), and what it used."""

    problems: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)  # the "Using MNIST's ..." lines
    probes: list[dict] = field(default_factory=list)  # the datasets left in the namespace

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(stdout: str, error: str | None = None) -> Verdict:
    """Judge one run from what its cells printed and the error that stopped it (if any)."""
    from utils import data

    verdict = Verdict()
    problems = verdict.problems
    if error:
        problems.append(f"error: {error}")
    lines = stdout.splitlines()
    real = [what for name, (_, _, what) in data._IMAGE_SETS.items() if data.REGISTRY[name].kind == "download"]
    # the other downloads (IMDB) by the first word of their title: "Using IMDB film reviews: ..."
    real += [
        d.title.split(" ")[0]
        for n, d in data.REGISTRY.items()
        if d.kind == "download" and n not in data._IMAGE_SETS
    ]
    verdict.used = [ln for ln in lines if ln.startswith("Using ") and any(w in ln for w in real)]
    stand_ins = [ln for ln in lines if re.search(r"; using .* instead", ln)]
    if stand_ins:
        problems.append(f"took a stand-in: {stand_ins[0]!r}")
    if not verdict.used:
        problems.append("printed no real-dataset description ('Using MNIST's ...')")
    probes = [ln for ln in lines if ln.startswith("offline-probe ")]
    if not probes and not error:
        problems.append("the probe cell printed nothing")
    for probe in probes:
        for item in json.loads(probe.split(" ", 1)[1]):
            verdict.probes.append(item)
            if (
                item["stand_in"]
                or data.REGISTRY.get(item["name"], None) is None
                or data.REGISTRY[item["name"]].kind != "download"
            ):
                problems.append(f"{item['variable']} holds {item['name']} (stand_in={item['stand_in']})")
    return verdict


def network_is_cut() -> bool:
    """True when no address outside this machine can be reached (checked at the socket level)."""
    for address in (("1.1.1.1", 443), ("8.8.8.8", 53)):
        try:
            with socket.create_connection(address, timeout=2):
                return False
        except OSError:
            continue
    return True


def missing_datasets(status_stdout: str) -> list[str]:
    """The datasets ``python -m utils.data status`` lists as not available (third column not "yes")."""
    from utils import data

    missing = []
    for line in status_stdout.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] in data.REGISTRY and words[2] != "yes":
            missing.append(words[0])
    return missing


def room(args: argparse.Namespace) -> int:
    """Phase 2, inside the cut network: status, then the notebooks, on the copied folder."""
    from tools.notebook_runner import run_notebook

    offline = settings.offline()
    cut = network_is_cut()
    print(f"network: {'cut' if cut else 'NOT cut'}; COURSE_OFFLINE {'on' if offline else 'off'}")
    if not offline and not cut:
        print("FAILED: the network is reachable in the room phase")
        return 1
    t = time.perf_counter()
    status = subprocess.run(
        [sys.executable, "-m", "utils.data", "status"], cwd=ROOT, capture_output=True, text=True
    )
    print(status.stdout.rstrip())
    print(f"[status took {time.perf_counter() - t:.1f} s]")
    missing = missing_datasets(status.stdout)
    failed = 1 if status.returncode or missing else 0
    if missing:
        print(f"FAILED: not available in the copied folder: {', '.join(missing)}")
    paths = [Path(p).resolve() for p in args.notebooks] or notebooks_that_load_downloads()
    print(f"\n{len(paths)} notebook(s), smoke profile:\n")
    print("| notebook | wall (s) | datasets used | result |\n|---|---:|---|---|")
    for path in paths:
        result = run_notebook(path, timeout=args.timeout, after=[PROBE])
        verdict = judge(result.stream("stdout"), result.error)
        used = ", ".join(sorted({f"{p['name']} {tuple(p['shape'])}" for p in verdict.probes})) or "-"
        status_text = "ok" if verdict.ok else "FAILED: " + "; ".join(verdict.problems)
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"| {name} | {result.seconds:.1f} | {used} | {status_text} |", flush=True)
        failed += not verdict.ok
    print(f"\n{failed} failure(s)")
    return 1 if failed else 0


def _genuine_data():
    # Loaded by path: another installed package may also be called "tests".
    spec = importlib.util.spec_from_file_location(
        "genuine_data", ROOT / "tests" / "fixtures" / "genuine_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def can_cut_network() -> bool:
    """True when this process may run a command in a new network namespace (root, unshare, ip)."""
    if not (os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".ci/offline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", help="default: every notebook that loads a download dataset")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--room", action="store_true", help=argparse.SUPPRESS)  # phase 2, internal
    args = parser.parse_args(argv)
    if args.room:
        return room(args)

    genuine_data = _genuine_data()
    serve, write_mirror = genuine_data.serve, genuine_data.write_mirror

    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="course-offline-"))
    try:
        mirror, prepared = work / "mirror", work / "prepared"
        t = time.perf_counter()
        write_mirror(mirror, "workshop")
        print(f"[mirror of genuine-format files written in {time.perf_counter() - t:.1f} s]")
        t = time.perf_counter()
        with serve(mirror) as url:
            env = {
                **os.environ,
                "COURSE_DATA_DIR": str(prepared),
                "COURSE_DATA_MIRROR": url,
                "COURSE_DATA_CHECKSUMS": str(mirror / "SHA256SUMS"),
                "COURSE_OFFLINE": "0",
            }
            fetched = subprocess.run(
                [sys.executable, "-m", "utils.data", "fetch", "--all"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
        print(re.sub(r"[^\n]*\r", "", fetched.stdout).rstrip())  # drop the progress bars
        print(f"[fetch --all from {url} took {time.perf_counter() - t:.1f} s; server stopped]")
        if fetched.returncode:
            print("FAILED: fetch --all", fetched.stderr)
            return 1

        # The room: a copy somewhere else, with the manifest beside it; the original is gone.
        room_dir = work / "room"
        copy = room_dir / "course-data"
        shutil.copytree(prepared, copy)
        shutil.copy(mirror / "SHA256SUMS", room_dir / "SHA256SUMS")
        shutil.rmtree(prepared)
        shutil.rmtree(mirror)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
        env.update(
            COURSE_PROFILE="smoke",
            COURSE_CHECKS_STRICT="1",
            COURSE_DATA_DIR=str(copy),
            COURSE_DATA_CHECKSUMS=str(room_dir / "SHA256SUMS"),
            TF_CPP_MIN_LOG_LEVEL="1",
        )
        command = [
            sys.executable,
            "-m",
            "tools.offline_rehearsal",
            "--room",
            "--timeout",
            str(args.timeout),
            *[str(Path(p).resolve()) for p in args.notebooks],
        ]
        if can_cut_network():
            print("\nThe room: network cut with `unshare -n` (loopback only); COURSE_OFFLINE not set.")
            command = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "room", *command]
        else:
            print("\nThe room: cannot cut the network here (needs root and unshare); using COURSE_OFFLINE=1.")
            env["COURSE_OFFLINE"] = "1"
        t = time.perf_counter()
        code = subprocess.run(command, cwd=ROOT, env=env).returncode
        print(f"[room phase took {time.perf_counter() - t:.1f} s; total {time.perf_counter() - start:.1f} s]")
        return code
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
