"""binder/: the image Binder and JupyterHubs build stays in step with the course's pinned environment."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s#]+)")
# Tools a learner does not need in a hosted image (tests, benchmarks, lint). tensorflow-serving-api is
# TF Serving's gRPC client, which the tests use against the server's gRPC endpoint; it depends on the
# full `tensorflow`, which would double the image beside tensorflow-cpu.
DEV_ONLY = {
    "pytest",
    "pytest-xdist",
    "nbval",
    "nbclient",
    "nbformat",
    "psutil",
    "ruff",
    "tensorflow-serving-api",
}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_binder_pins_are_the_course_pins_with_cpu_tensorflow_and_no_dev_tools():
    course, binder = _pins(REPO / "requirements.txt"), _pins(REPO / "binder/requirements.txt")
    assert binder.pop("tensorflow-cpu") == course.pop("tensorflow"), "tensorflow-cpu must match tensorflow"
    assert "tensorflow" not in binder, "the GPU build would double the image"
    expected = {name: version for name, version in course.items() if name not in DEV_ONLY}
    assert binder == expected


def test_binder_installs_the_course_helpers_and_its_python_is_the_course_python():
    lines = [line.strip() for line in (REPO / "binder/requirements.txt").read_text().splitlines()]
    assert "-e ." in lines  # repo2docker runs pip from the repository root
    runtime = (REPO / "binder/runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.(1[1-9])", runtime), runtime
    environment = (REPO / "environment.yml").read_text()
    assert f"python={runtime.removeprefix('python-')}" in environment
    # repo2docker uses only binder/ when it exists: nothing else may configure the image
    assert sorted(p.name for p in (REPO / "binder").iterdir()) == ["requirements.txt", "runtime.txt"]
