"""Print a table of every notebook's smoke time and result per precision, from pytest's JUnit XML files.

    python .ci/notebook_table.py float32=test-artifacts/junit-float32.xml t4=... tpu=...

A notebook's time is the sum of its cells' times (nbval runs one test per cell); "FAIL n" counts failed
cells. Run by .ci/run after the suites; prints only.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def notebook_results(path: Path) -> dict[str, tuple[float, int]]:
    """Return {notebook: (seconds, failed cells)} for the .ipynb test cases in one JUnit XML file."""
    times: dict[str, float] = defaultdict(float)
    failed: dict[str, int] = defaultdict(int)
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("file") or case.get("classname", "")
        if ".ipynb" not in name:
            continue
        notebook = Path(name.split(".ipynb")[0].replace(".", "/") + ".ipynb").name
        times[notebook] += float(case.get("time", 0))
        failed[notebook] += any(child.tag in ("failure", "error") for child in case)
    return {nb: (times[nb], failed[nb]) for nb in times}


def main(args: list[str]) -> int:
    columns = dict(arg.split("=", 1) for arg in args)
    results = {label: notebook_results(Path(file)) for label, file in columns.items() if Path(file).exists()}
    if not results:
        print("notebook table: no JUnit XML file found")
        return 0
    notebooks = sorted({nb for r in results.values() for nb in r})
    print("| notebook | " + " | ".join(results) + " |")
    print("|---|" + "---:|" * len(results))
    for nb in notebooks:
        cells = []
        for r in results.values():
            seconds, failed = r.get(nb, (0.0, -1))
            cells.append(
                "not run" if failed < 0 else f"{'pass' if not failed else f'FAIL {failed}'} {seconds:.0f} s"
            )
        print(f"| {nb} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
