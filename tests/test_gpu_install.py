"""The GPU install path: requirements-gpu.txt is requirements.txt plus TensorFlow's CUDA extra, nothing else.

That it resolves on PyPI is checked by .ci/gpu-install (a pip dry run, metadata only).
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_gpu_requirements_are_the_course_requirements_plus_the_cuda_extra():
    gpu = _requirements(REPO / "requirements-gpu.txt")
    assert gpu[0] == "-r requirements.txt", "start from the course's pins, so the two never drift"
    (tf_pin,) = (line for line in _requirements(REPO / "requirements.txt") if line.startswith("tensorflow=="))
    assert gpu[1:] == [tf_pin.replace("tensorflow==", "tensorflow[and-cuda]==")]


def test_make_offers_the_gpu_install():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^\$\(VENV\)/\.installed-gpu: requirements-gpu\.txt", makefile, re.M)
    assert "$(if $(GPU),$(VENV)/.installed-gpu,)" in makefile
