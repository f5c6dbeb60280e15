"""Unit tests are hermetic about the accelerator emulation.

CI runs the whole suite again with ``COURSE_EMULATE`` set (the T4 under Colab's versions), which is meant for
the notebooks' kernels. A unit test that is about a precision sets that precision itself (see
``tests/test_env.py`` and the lab checks' mixed-precision tests), so the variable is removed here.
"""

import pytest


@pytest.fixture(autouse=True)
def _no_emulation(monkeypatch):
    monkeypatch.delenv("COURSE_EMULATE", raising=False)


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    """Run the test under a GPU's (mixed_float16) and a TPU's (mixed_bfloat16) global policy; restore float32."""
    import keras

    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")
