"""Where we run, on which devices, with which profile: the one setup call of every notebook.

``setup()`` imports TensorFlow quietly, detects the platform (local, Binder, JupyterHub, Colab,
Kaggle) and the devices (GPU, TPU, CPU), picks the profile, seeds every random generator,
turns mixed precision on only where the hardware gains from it, prints a one-line banner and
returns a :class:`Config` that notebooks read their sizes from.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import glob
import importlib.metadata
import os
import platform as _platform
import random
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils import settings

PROFILES: dict[str, dict[str, Any]] = {
    # What the tests run: seconds per notebook, tiny data, still end to end.
    "smoke": {"epochs": 2, "max_samples": 512, "batch_size": 64},
    # A laptop or a Binder pod: minutes per notebook, real learning visible, kernel under 2 GB.
    "cpu": {"epochs": 12, "max_samples": 10_000, "batch_size": 64},
    # Colab, Kaggle or a workstation with an accelerator: full-size data and models.
    "gpu": {"epochs": 30, "max_samples": None, "batch_size": 128},
}

# C++ log lines TensorFlow writes on import or on first device use that tell a learner nothing
# actionable. Anything else written to stderr while we hold it is passed through untouched.
NOISE_PATTERNS: tuple[str, ...] = (
    r"All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations are on",
    r"Could not find cuda drivers on your machine",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions:",
    r"rebuild TensorFlow with the appropriate compiler flags",
    r"failed call to cuInit",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"Attempting to register factory for plugin",
    # Under mixed_float16 on a CPU without AVX-512 (the COURSE_EMULATE=t4 rehearsal): informational.
    r"oneDNN supports DT_HALF only on platforms with AVX-512",
    # Printed beside every failed eager op; the Python exception carries the same message.
    r"Local rendezvous is aborting with status",
    r"^\s*$",
)
_NOISE = re.compile("|".join(NOISE_PATTERNS))


def is_noise(line: str) -> bool:
    """Return True if ``line`` is one of TensorFlow's known start-up log lines."""
    return bool(_NOISE.search(line))


@contextlib.contextmanager
def quiet_stderr(also: str | None = None) -> Iterator[None]:
    """Hold everything written to file descriptor 2, then pass on all but known noise.

    ``also`` is an extra regular expression of lines to drop (a tool's own chatter, such as the
    TFLite converter's), on top of TensorFlow's known start-up lines.

    TensorFlow's C++ runtime writes straight to the file descriptor, past ``sys.stderr``, and
    some of its lines ignore ``TF_CPP_MIN_LOG_LEVEL``; only a redirect at the descriptor level
    catches them. Lines that are not known noise (real warnings and errors) are written to
    ``sys.stderr`` afterwards, so they stay visible.
    """
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            extra = re.compile(also) if also else None
            kept = [
                line
                for line in text.splitlines()
                if not (is_noise(line) or (extra is not None and extra.search(line)))
            ]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def import_tensorflow() -> Any:
    """Import and return ``tensorflow`` without its start-up noise (Keras 3 backend)."""
    if "tensorflow" in sys.modules:  # imported already (say by `import keras` first): quiet it all the same
        tf = sys.modules["tensorflow"]
        tf.get_logger().setLevel("WARNING")
        return tf
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide C++ INFO lines, keep warnings
    with quiet_stderr():
        import keras  # noqa: F401  (TensorFlow 2.21 imports it anyway; make it explicit)
        import tensorflow as tf

        tf.config.list_physical_devices()  # the first device query prints the CUDA lines
    # TensorFlow's Python logger reports INFO lines such as "Assets written to ..." on every export.
    tf.get_logger().setLevel("WARNING")
    return tf


def detect_platform() -> str:
    """Return where this kernel runs: 'colab', 'kaggle', 'binder', 'jupyterhub' or 'local'.

    Read by :func:`utils.settings.platform`, the one place the platforms are recognised.
    """
    return settings.platform()


def tpu_present() -> bool:
    """Return True if a TPU looks attached (TPU VM device files or a TPU address).

    Detected without initialising the TPU system, which only a strategy should do.
    Not verifiable on the course's CI machines, which have no TPU.
    """
    if settings.tpu_address():
        return True
    return bool(glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*"))


@dataclass(frozen=True)
class Devices:
    """The accelerators found: ``kind`` is 'gpu', 'tpu' or 'cpu'.

    ``emulated`` is True when ``$COURSE_EMULATE`` made the course decide as it would on that
    device while every computation still runs on this machine's CPU.
    """

    kind: str
    count: int
    name: str
    compute_capability: tuple[int, int] | None = None
    emulated: bool = False


# What ``COURSE_EMULATE`` can stand for: the devices learners get on Colab, Kaggle and in the cloud.
# Only the course's decisions change (profile, precision policy, anything a notebook branches on);
# TensorFlow itself still sees, and runs on, the CPU.
EMULATED: dict[str, Devices] = {
    "t4": Devices("gpu", 1, "Tesla T4", (7, 5), emulated=True),  # Colab's free GPU, Kaggle's
    "l4": Devices("gpu", 1, "NVIDIA L4", (8, 9), emulated=True),  # Colab's paid tiers
    "a100": Devices("gpu", 1, "NVIDIA A100-SXM4-40GB", (8, 0), emulated=True),
    "tpu": Devices("tpu", 1, "TPU", None, emulated=True),  # Colab's TPU runtime
}


def emulated_device() -> Devices | None:
    """Return the device ``$COURSE_EMULATE`` names (t4, l4, a100, tpu), or None when it is unset.

    Raises ``ValueError`` (:class:`utils.settings.SettingError`) naming the choices for any other value.
    """
    wanted = settings.emulate()
    return None if wanted is None else EMULATED[wanted]


def detect_devices() -> Devices:
    """Return the accelerator kind, count and name (falls back to the CPU).

    With ``$COURSE_EMULATE`` set, return the emulated device instead, marked ``emulated``.
    """
    emulated = emulated_device()
    if emulated is not None:
        return emulated
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            details = tf.config.experimental.get_device_details(gpus[0])
        cc = details.get("compute_capability")
        return Devices("gpu", len(gpus), str(details.get("device_name", "GPU")), cc)
    if tpu_present():
        return Devices("tpu", 1, "TPU")
    return Devices("cpu", 1, f"CPU ({os.cpu_count()} cores)")


def choose_profile(devices: Devices | None = None) -> str:
    """Return ``$COURSE_PROFILE`` if set, else 'gpu' with an accelerator (or an emulated one), else 'cpu'."""
    wanted = settings.profile()  # raises ValueError naming the profiles for any other value
    if wanted:
        return wanted
    if devices is not None and devices.kind in ("gpu", "tpu"):
        return "gpu"
    return "cpu"


def choose_precision(devices: Devices, wanted: bool | None = None) -> str:
    """Return the Keras dtype policy that pays on this hardware.

    ``mixed_float16`` on GPUs with tensor cores (compute capability 7.0 or newer),
    ``mixed_bfloat16`` on TPUs, ``float32`` everywhere else. On CPUs mixed precision made
    ResNet training 3-4x slower on the course's machines, so it is never chosen there
    automatically; ``wanted=True`` forces it (to measure it), ``wanted=False`` turns it off.
    """
    if wanted is False:
        return "float32"
    if devices.kind == "tpu":
        return "mixed_bfloat16"
    if devices.kind == "gpu" and (devices.compute_capability or (0, 0)) >= (7, 0):
        return "mixed_float16"
    if wanted:
        return "mixed_float16" if devices.kind == "gpu" else "mixed_bfloat16"
    return "float32"


# What each policy's compute dtype can promise: unit round-off is 2^-24 (float32), 2^-11 (float16)
# and 2^-8 (bfloat16). A layer's output goes through a few roundings (the input cast, the weights'
# cast, the accumulation of a dot product), so the relative tolerance is about 16 round-offs, and
# the absolute one covers values near zero that were computed from values of order one.
TOLERANCES: dict[str, dict[str, float]] = {
    "float32": {"rtol": 1e-5, "atol": 1e-5},
    "float16": {"rtol": 1e-2, "atol": 1e-2},
    "bfloat16": {"rtol": 6e-2, "atol": 6e-2},
}


def compute_dtype(policy: str | None = None) -> str:
    """Return the dtype layers compute in: 'float32', 'float16' or 'bfloat16'.

    ``policy`` is a Keras dtype policy name ('mixed_float16', ...); None reads the global policy
    that :func:`setup` set.
    """
    if policy is None:
        import keras

        return str(keras.mixed_precision.global_policy().compute_dtype)
    return {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(policy, policy)


def tolerance(policy: str | None = None, *, scale: float = 1.0) -> dict[str, float]:
    """Return ``{"rtol": ..., "atol": ...}`` that a Keras layer's result can promise at ``policy``.

    Use it to compare a layer's output with a float32 or NumPy reference:
    ``np.testing.assert_allclose(layer(x), reference, **utils.env.tolerance())``. ``scale``
    widens both for a result that went through many layers or a long sum. Under float32 it
    is 1e-5, under mixed_float16 1e-2, under mixed_bfloat16 6e-2.
    """
    base = TOLERANCES.get(compute_dtype(policy), TOLERANCES["float32"])
    return {k: v * scale for k, v in base.items()}


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's, TensorFlow's and Keras's random generators with ``seed``."""
    import keras

    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this one's hash seed is set
    random.seed(seed)
    keras.utils.set_random_seed(seed)  # seeds random, numpy, tensorflow and keras


def free_memory() -> bool:
    """Collect Python's garbage, then give the heap memory freed since back to the system.

    Deleting a model frees its memory inside the process, but not to the system: TensorFlow's
    threads allocate through glibc's malloc, which keeps freed blocks (in one pool per thread) for
    later use, so the kernel's resident size stays where its peak was. ``malloc_trim`` returns
    those free pages. Returns True if memory was returned; on a system without glibc (macOS,
    Windows, musl) it only collects garbage and returns False.
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(trim(0))


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class Config:
    """What ``setup()`` decided. Notebooks read their sizes from it."""

    profile: str
    platform: str
    device: str
    device_name: str
    n_devices: int
    precision: str
    seed: int
    data_dir: str
    offline: bool
    epochs: int
    max_samples: int | None
    batch_size: int
    versions: dict[str, str] = field(default_factory=dict)
    emulated: bool = False

    def pick(self, **per_profile: Any) -> Any:
        """Return the value given for the current profile: ``cfg.pick(smoke=2, cpu=20, gpu=40)``.

        A profile left out falls back to the next larger one (smoke -> cpu -> gpu), so
        ``cfg.pick(smoke=1, cpu=10)`` gives 10 on a GPU too.
        """
        order = list(PROFILES)
        for name in order[order.index(self.profile) :] + order[::-1]:
            if name in per_profile:
                return per_profile[name]
        raise TypeError("pick() needs at least one of: " + ", ".join(order))

    def limit(self, n: int) -> int:
        """Return ``n`` capped at the profile's ``max_samples``."""
        return n if self.max_samples is None else min(n, self.max_samples)

    def banner(self) -> str:
        """Return the one-line summary ``setup()`` prints."""
        data = "offline" if self.offline else "online if reachable"
        device = self.device_name if self.n_devices == 1 else f"{self.n_devices}× {self.device_name}"
        if self.emulated:
            device += " (emulated on the CPU)"
        return (
            f"DL course · profile {self.profile} · {self.platform} · {device} · {self.precision}"
            f" · TF {self.versions.get('tensorflow')} · Keras {self.versions.get('keras')}"
            f" · Python {self.versions.get('python')} · seed {self.seed} · data {data}"
        )


def setup(
    profile: str | None = None,
    *,
    seed: int = 42,
    mixed_precision: bool | None = None,
    deterministic: bool = False,
    verbose: bool = True,
) -> Config:
    """Prepare TensorFlow for this machine and return the run's :class:`Config`.

    ``profile`` overrides ``$COURSE_PROFILE``; ``mixed_precision`` None chooses by hardware;
    ``deterministic`` makes TensorFlow's ops deterministic (slower on GPUs). Safe to call again.

    ``$COURSE_EMULATE`` (t4, l4, a100 or tpu) makes every decision as on that device, the profile
    (when ``$COURSE_PROFILE`` is unset) and the precision policy included, while the work still runs
    on the CPU: it rehearses the GPU and TPU paths on a laptop, and the tests run every notebook so.
    """
    if profile is not None:
        os.environ["COURSE_PROFILE"] = profile
    tf = import_tensorflow()
    import keras

    for gpu in tf.config.list_physical_devices("GPU"):
        # Take GPU memory as needed, not all at once; fails harmlessly once the GPU is in use.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)

    devices = detect_devices()
    chosen = choose_profile(devices)
    seed_everything(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    precision = choose_precision(devices, mixed_precision)
    keras.mixed_precision.set_global_policy(precision)

    folder = settings.data_dir()
    folder.mkdir(parents=True, exist_ok=True)  # as utils.data.data_dir() does: the cache exists
    sizes = PROFILES[chosen]
    cfg = Config(
        profile=chosen,
        platform=detect_platform(),
        device=devices.kind,
        device_name=devices.name,
        n_devices=devices.count,
        precision=precision,
        seed=seed,
        data_dir=str(folder),
        offline=settings.offline(),
        epochs=sizes["epochs"],
        max_samples=sizes["max_samples"],
        batch_size=sizes["batch_size"],
        versions={
            "python": _platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        emulated=devices.emulated,
    )
    if verbose:
        print(cfg.banner())
    return cfg


def _nvidia_driver_present() -> bool:
    """Return True if this machine has an NVIDIA driver loaded (a GPU TensorFlow could use)."""
    return Path("/proc/driver/nvidia/version").exists() or bool(glob.glob("/dev/nvidia[0-9]*"))


def tensorflow_build() -> str:
    """Return which TensorFlow build is installed: 'CUDA 12.5.1, cuDNN 9', 'CPU only', ...

    The CUDA build runs on a GPU only when NVIDIA's CUDA libraries are installed beside it
    (``tensorflow[and-cuda]``, which ``requirements-gpu.txt`` installs) or by the platform (Colab).
    """
    tf = import_tensorflow()
    info: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        info = dict(tf.sysconfig.get_build_info())
    if info.get("is_cuda_build"):
        build = f"CUDA {info.get('cuda_version', '?')}, cuDNN {info.get('cudnn_version', '?')}"
        libraries = _version("nvidia-cudnn-cu12") != "not installed" or detect_platform() in (
            "colab",
            "kaggle",
        )
        return build + ("" if libraries else " (CUDA libraries not installed: CPU only)")
    if info.get("is_rocm_build"):
        return "ROCm (AMD GPUs)"
    return "CPU only"


def gpu_advice(devices: Devices | None = None) -> str:
    """Return one sentence on the accelerator: what the course uses, or what to do to get the GPU.

    Reads what is visible without a GPU of its own: the NVIDIA driver's files, the TensorFlow
    build and its CUDA libraries, the platform and ``$COURSE_EMULATE``.
    """
    devices = devices or detect_devices()
    if devices.emulated:
        return (
            f"{devices.name} emulated: the course decides as on that device (profile, precision) but "
            "computes on the CPU. Unset COURSE_EMULATE to use this machine as it is."
        )
    if devices.kind == "gpu":
        return f"TensorFlow sees {devices.count} GPU(s) ({devices.name}): the course uses it."
    if devices.kind == "tpu":
        return "A TPU is attached: the course uses it through TPUStrategy in lesson 09."
    platform = detect_platform()
    if platform == "colab":
        return (
            "No GPU attached. For one: Runtime → Change runtime type → T4 GPU, then run the notebook again."
        )
    if platform == "kaggle":
        return "No GPU attached. For one: Settings → Accelerator → GPU, then run the notebook again."
    if not _nvidia_driver_present():
        return "No GPU on this machine: the course runs on the CPU (the cpu profile is sized for that)."
    if "CUDA libraries not installed" in tensorflow_build():
        return (
            "This machine has an NVIDIA GPU but TensorFlow cannot use it: NVIDIA's CUDA libraries are "
            "missing. Install them with `make setup GPU=1` (or `pip install -r requirements-gpu.txt`), "
            "then restart the kernel."
        )
    if tensorflow_build() == "CPU only":
        return (
            "This machine has an NVIDIA GPU but the installed TensorFlow is a CPU-only build "
            "(tensorflow-cpu). Install requirements-gpu.txt (`make setup GPU=1`), then restart the kernel."
        )
    return (
        "This machine has an NVIDIA driver, and TensorFlow's CUDA libraries are installed, yet TensorFlow "
        "sees no GPU. Check that `nvidia-smi` works and that the driver supports CUDA 12, then restart the kernel."
    )


def report() -> list[tuple[str, str]]:
    """Return (item, value) rows describing this environment, for the start notebook."""
    tf = import_tensorflow()
    devices = detect_devices()
    rows = [
        ("platform", detect_platform()),
        ("python", _platform.python_version()),
        ("operating system", f"{_platform.system()} {_platform.release()}"),
        ("CPU cores", str(os.cpu_count())),
        (
            "accelerator",
            f"{devices.kind}: {devices.name}"
            + (f" ×{devices.count}" if devices.count > 1 else "")
            + (" (emulated on the CPU)" if devices.emulated else ""),
        ),
        ("GPU status", gpu_advice(devices)),
        ("memory limit", _memory_limit()),
        ("tensorflow", tf.__version__),
        ("tensorflow build", tensorflow_build()),
    ]
    for pkg in (
        "keras",
        "numpy",
        "jupyterlab",
        "ipywidgets",
        "plotly",
        "scikit-learn",
        "pandas",
        "tensorboard",
    ):
        rows.append((pkg, _version(pkg)))
    return rows


def _memory_limit() -> str:
    """Return the memory this kernel may use: the container's limit if there is one."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            raw = Path(path).read_text().strip()
            if raw != "max" and int(raw) < 1 << 50:
                return f"{int(raw) / 2**30:.1f} GiB (container limit)"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB (machine)"
    return "unknown"
