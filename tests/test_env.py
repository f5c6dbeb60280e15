"""utils.env: quiet TensorFlow start-up, profile and precision choice, seeding, the banner."""

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from utils import env, settings

# Lines TensorFlow 2.21 printed at import on the course's CPU machines (timestamps shortened).
TF_NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795451597.894078    2064 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1795451597.894717    2064 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "I0000 00:00:1795451598.262475    2064 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "E0000 00:00:1795451602.415156    2064 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
]


@pytest.mark.parametrize("line", TF_NOISE)
def test_known_start_up_lines_are_noise(line):
    assert env.is_noise(line)


@pytest.mark.parametrize(
    "line",
    [
        "W0000 00:00:17 123 op_kernel.cc:1857] OP_REQUIRES failed at matmul: INVALID_ARGUMENT: shapes differ",
        "UserWarning: `input_shape` is deprecated",
        "ResourceExhaustedError: OOM when allocating tensor",
    ],
)
def test_real_warnings_are_not_noise(line):
    assert not env.is_noise(line)


def test_quiet_stderr_drops_noise_and_keeps_real_messages(capfd):
    with env.quiet_stderr():
        os.write(2, ("\n".join(TF_NOISE) + "\nreal problem: disk full\n").encode())
    err = capfd.readouterr().err
    assert "real problem: disk full" in err
    assert "oneDNN" not in err and "cuInit" not in err and "absl" not in err


def test_quiet_stderr_restores_the_descriptor(capfd):
    with env.quiet_stderr():
        pass
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


@pytest.mark.slow
def test_setup_prints_one_banner_line_and_nothing_on_stderr():
    code = textwrap.dedent(
        """
        import utils
        cfg = utils.env.setup("smoke", seed=7)  # the setup cell comes first in every notebook
        import random, numpy as np, tensorflow as tf
        a = (random.random(), float(np.random.rand()), float(tf.random.uniform(())))
        utils.env.setup("smoke", seed=7, verbose=False)
        b = (random.random(), float(np.random.rand()), float(tf.random.uniform(())))
        assert a == b, (a, b)
        assert cfg.profile == "smoke" and cfg.device == "cpu" and cfg.precision == "float32", cfg
        """
    )
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"setup wrote to stderr:\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("DL course · profile smoke"), proc.stdout


def test_import_utils_does_not_import_tensorflow():
    code = "import sys, utils; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_tensorflow_is_quieted_even_when_it_was_imported_first():
    # `import keras` before `import utils` (or a kernel reused by the tests) imports TensorFlow without
    # the course; its Python logger must still be set to hide "Assets written to ..." INFO lines.
    tf = env.import_tensorflow()
    tf.get_logger().setLevel("INFO")
    assert env.import_tensorflow().get_logger().getEffectiveLevel() == logging.WARNING


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "CPU ")
    assert env.choose_profile() == "cpu"
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(
        ValueError, match="COURSE_PROFILE='fast' is not a profile. Use one of: smoke, cpu, gpu"
    ):
        env.choose_profile()


def test_the_profiles_and_emulations_are_the_ones_settings_accepts():
    # utils.settings validates the variables; env sizes the profiles and describes the devices.
    assert tuple(env.PROFILES) == settings.PROFILES
    assert tuple(env.EMULATED) == settings.EMULATIONS


def test_profile_from_hardware(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert env.choose_profile(env.Devices("cpu", 1, "CPU")) == "cpu"
    assert env.choose_profile(env.Devices("gpu", 1, "T4", (7, 5))) == "gpu"
    assert env.choose_profile(env.Devices("tpu", 1, "TPU")) == "gpu"


@pytest.mark.parametrize(
    ("devices", "wanted", "policy"),
    [
        (env.Devices("cpu", 1, "CPU"), None, "float32"),  # slower on CPUs: never automatic
        (env.Devices("gpu", 1, "T4", (7, 5)), None, "mixed_float16"),
        (env.Devices("gpu", 1, "A100", (8, 0)), None, "mixed_float16"),
        (env.Devices("gpu", 1, "K80", (3, 7)), None, "float32"),  # no tensor cores
        (env.Devices("tpu", 1, "TPU"), None, "mixed_bfloat16"),
        (env.Devices("gpu", 1, "T4", (7, 5)), False, "float32"),
        (env.Devices("cpu", 1, "CPU"), True, "mixed_bfloat16"),  # forced, e.g. to measure it
    ],
)
def test_precision_only_where_it_pays(devices, wanted, policy):
    assert env.choose_precision(devices, wanted) == policy


def _config(profile):
    return env.Config(profile, "local", "cpu", "CPU", 1, "float32", 0, "/tmp", True, 1, 1, 1)


def test_pick_falls_back_to_the_next_larger_profile():
    assert _config("smoke").pick(smoke=1, cpu=10, gpu=100) == 1
    assert _config("gpu").pick(smoke=1, cpu=10) == 10
    assert _config("smoke").pick(cpu=10) == 10
    assert _config("cpu").pick(gpu=100) == 100
    with pytest.raises(TypeError):
        _config("cpu").pick()


@pytest.mark.parametrize(
    ("variables", "platform"),
    [
        ({"COLAB_RELEASE_TAG": "release"}, "colab"),
        ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle"),
        ({"BINDER_LAUNCH_HOST": "https://mybinder.org/"}, "binder"),
        ({"JUPYTERHUB_API_URL": "http://hub/api"}, "jupyterhub"),
        ({}, "local"),
    ],
)
def test_platform_detection(monkeypatch, variables, platform):
    for key in (
        "COLAB_RELEASE_TAG",
        "KAGGLE_KERNEL_RUN_TYPE",
        "KAGGLE_URL_BASE",
        "BINDER_LAUNCH_HOST",
        "BINDER_REPO_URL",
        "BINDER_REQUEST",
        "JUPYTERHUB_API_URL",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert env.detect_platform() == platform


@pytest.mark.slow
def test_report_lists_versions(monkeypatch):
    monkeypatch.delenv("COURSE_EMULATE", raising=False)
    rows = dict(env.report())
    assert rows["tensorflow"].startswith("2.") and rows["keras"].startswith("3.")
    assert rows["accelerator"].startswith("cpu")
    # The pip wheel is a CUDA build; without NVIDIA's libraries beside it, it runs on the CPU only.
    assert rows["tensorflow build"].startswith(("CUDA", "CPU only", "ROCm")), rows["tensorflow build"]
    assert "GPU" in rows["GPU status"] or "CPU" in rows["GPU status"]


@pytest.mark.parametrize(
    ("name", "kind", "policy"),
    [
        ("t4", "gpu", "mixed_float16"),
        ("a100", "gpu", "mixed_float16"),
        ("L4 ", "gpu", "mixed_float16"),
        ("tpu", "tpu", "mixed_bfloat16"),
    ],
)
def test_emulation_decides_as_on_the_device(monkeypatch, name, kind, policy):
    monkeypatch.setenv("COURSE_EMULATE", name)
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    devices = env.detect_devices()
    assert devices.kind == kind and devices.emulated
    assert env.choose_precision(devices) == policy
    assert env.choose_profile(devices) == "gpu"  # COURSE_PROFILE unset: the device's profile
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert env.choose_profile(devices) == "smoke"  # COURSE_PROFILE still wins
    assert "emulated" in env.gpu_advice(devices)


@pytest.mark.parametrize("value", ["", "0", "off", "none"])
def test_emulation_off(monkeypatch, value):
    monkeypatch.setenv("COURSE_EMULATE", value)
    assert env.emulated_device() is None


def test_emulation_of_an_unknown_device_names_the_choices(monkeypatch):
    monkeypatch.setenv("COURSE_EMULATE", "h100")
    with pytest.raises(
        ValueError, match="is not a device the course can emulate. Use one of: t4, l4, a100, tpu"
    ):
        env.detect_devices()


@pytest.mark.slow
def test_setup_under_emulation_sets_the_policy_and_says_emulated():
    code = textwrap.dedent(
        """
        import keras, utils
        cfg = utils.env.setup()
        assert cfg.profile == "gpu" and cfg.device == "gpu" and cfg.emulated, cfg
        assert cfg.precision == keras.mixed_precision.global_policy().name == "mixed_float16"
        layer = keras.layers.Dense(2)
        assert layer(keras.ops.ones((1, 3))).dtype == "float16" and layer.kernel.dtype == "float32"
        assert utils.env.tolerance() == {"rtol": 1e-2, "atol": 1e-2}
        import tensorflow as tf
        assert not tf.config.list_physical_devices("GPU")  # TensorFlow itself is not fooled
        """
    )
    environment = {k: v for k, v in os.environ.items() if k != "COURSE_PROFILE"}
    environment["COURSE_EMULATE"] = "t4"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "Tesla T4 (emulated on the CPU) · mixed_float16" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    ("policy", "rtol"), [("float32", 1e-5), ("mixed_float16", 1e-2), ("mixed_bfloat16", 6e-2)]
)
def test_tolerance_follows_the_precision(policy, rtol):
    tol = env.tolerance(policy)
    assert tol["rtol"] == rtol
    assert env.tolerance(policy, scale=3)["atol"] == pytest.approx(3 * tol["atol"])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_tolerance_holds_for_one_rounding_and_not_for_a_real_error(dtype):
    """The tolerance accepts what the dtype's rounding does to a value, and refuses a 10 % error."""
    import numpy as np
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=1000).astype("float32")
    rounded = tf.cast(tf.cast(x, dtype), "float32").numpy()
    tol = env.tolerance("mixed_" + dtype)
    np.testing.assert_allclose(rounded, x, **tol)
    assert not np.allclose(x * 1.1, x, **tol)


def _resident_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and calls glibc's malloc_trim")
def test_free_memory_gives_freed_heap_blocks_back_to_the_system():
    blocks = [b"x" * 65_536 for _ in range(4_000)]  # 250 MB in blocks malloc keeps on its heap
    keep = blocks[::8]  # one block in eight stays alive, so the heap cannot simply shrink from its top
    del blocks
    before = _resident_mb()
    assert env.free_memory() is True
    after = _resident_mb()
    assert before - after > 100, f"resident {before:.0f} MB -> {after:.0f} MB"
    assert len(keep) == 500 and keep[-1][:1] == b"x"
