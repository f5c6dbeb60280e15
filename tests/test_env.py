"""utils.env: quiet TensorFlow start-up, profile and precision choice, seeding, the banner."""

import os
import subprocess
import sys
import textwrap

import pytest

from utils import env

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


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "CPU ")
    assert env.choose_profile() == "cpu"
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        env.choose_profile()


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


def test_report_lists_versions():
    rows = dict(env.report())
    assert rows["tensorflow"].startswith("2.") and rows["keras"].startswith("3.")
    assert rows["accelerator"].startswith("cpu")
