"""utils.settings: every COURSE_* variable and the platform facts, read in one place, one way."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from utils import settings

REPO = Path(__file__).resolve().parents[1]

COURSE_VARIABLES = (
    "COURSE_PROFILE",
    "COURSE_EMULATE",
    "COURSE_OFFLINE",
    "COURSE_CHECKS_STRICT",
    "COURSE_DATA_DIR",
    "COURSE_DATA_MIRROR",
    "COURSE_DATA_CHECKSUMS",
)
PLATFORM_VARIABLES = (
    "COLAB_RELEASE_TAG",
    "KAGGLE_KERNEL_RUN_TYPE",
    "KAGGLE_URL_BASE",
    "BINDER_LAUNCH_HOST",
    "BINDER_REPO_URL",
    "BINDER_REQUEST",
    "JUPYTERHUB_API_URL",
    "COLAB_TPU_ADDR",
    "TPU_NAME",
)


@pytest.fixture
def clean(monkeypatch, tmp_path):
    """No course variable, no platform variable, no google.colab module, a fresh HOME."""
    for name in COURSE_VARIABLES + PLATFORM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


# --------------------------------------------------------------------------------------------
# Flags: one meaning for true and false, and an error for anything else
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "True", "YES", "on", " On "])
@pytest.mark.parametrize("name", ["COURSE_OFFLINE", "COURSE_CHECKS_STRICT"])
def test_true_words(clean, name, value):
    clean.setenv(name, value)
    assert settings.flag(name) is True
    assert {"COURSE_OFFLINE": settings.offline, "COURSE_CHECKS_STRICT": settings.checks_strict}[name]()


@pytest.mark.parametrize("value", [None, "", "  ", "0", "false", "No", "OFF"])
@pytest.mark.parametrize("name", ["COURSE_OFFLINE", "COURSE_CHECKS_STRICT"])
def test_false_words(clean, name, value):
    if value is not None:
        clean.setenv(name, value)
    assert settings.flag(name) is False


@pytest.mark.parametrize("value", ["of", "2", "enabled", "y"])
def test_any_other_word_is_an_error_that_says_what_to_write(clean, value):
    clean.setenv("COURSE_OFFLINE", value)
    with pytest.raises(settings.SettingError) as caught:
        settings.offline()
    message = str(caught.value)
    assert f"COURSE_OFFLINE={value!r}" in message and "1, true, yes or on" in message and "off" in message
    assert isinstance(caught.value, ValueError)  # callers that caught ValueError still do


# --------------------------------------------------------------------------------------------
# Choices
# --------------------------------------------------------------------------------------------


def test_profile_is_read_trimmed_and_lower_cased(clean):
    assert settings.profile() is None
    clean.setenv("COURSE_PROFILE", " Smoke ")
    assert settings.profile() == "smoke"
    clean.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(settings.SettingError, match="'fast' is not a profile. Use one of: smoke, cpu, gpu"):
        settings.profile()


@pytest.mark.parametrize("value", ["", "0", "off", "none", "False", "no"])
def test_emulation_can_be_switched_off(clean, value):
    clean.setenv("COURSE_EMULATE", value)
    assert settings.emulate() is None


def test_emulation_names_a_device_or_the_choices(clean):
    clean.setenv("COURSE_EMULATE", "A100")
    assert settings.emulate() == "a100"
    clean.setenv("COURSE_EMULATE", "h100")
    with pytest.raises(
        settings.SettingError, match="a device the course can emulate. Use one of: t4, l4, a100, tpu"
    ):
        settings.emulate()


def test_off_words_are_not_a_choice_unless_asked(clean):
    clean.setenv("COURSE_PROFILE", "off")
    with pytest.raises(settings.SettingError, match="is not a profile"):
        settings.profile()
    assert settings.choice("COURSE_PROFILE", settings.PROFILES, off=True) is None
    clean.setenv("COURSE_PROFILE", "xl")
    with pytest.raises(settings.SettingError, match=r"is not one of: smoke, cpu, gpu \(or unset it\)"):
        settings.choice("COURSE_PROFILE", settings.PROFILES)


# --------------------------------------------------------------------------------------------
# The platform
# --------------------------------------------------------------------------------------------


def test_colab_by_its_runtime_variable(clean):
    assert not settings.on_colab() and settings.platform() == "local"
    clean.setenv("COLAB_RELEASE_TAG", "release-colab_20250101")
    assert settings.on_colab() and settings.platform() == "colab"


def test_colab_by_its_module(clean):
    clean.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert settings.on_colab() and settings.platform() == "colab"


@pytest.mark.parametrize(
    ("variable", "platform"),
    [
        ("KAGGLE_URL_BASE", "kaggle"),
        ("BINDER_REPO_URL", "binder"),
        ("JUPYTERHUB_API_URL", "jupyterhub"),
    ],
)
def test_other_platforms(clean, variable, platform):
    clean.setenv(variable, "x")
    assert settings.platform() == platform


def test_tpu_address(clean):
    assert settings.tpu_address() is None
    clean.setenv("TPU_NAME", " ")
    assert settings.tpu_address() is None
    clean.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert settings.tpu_address() == "10.0.0.2:8470"


# --------------------------------------------------------------------------------------------
# Data: the folder, the mirror, the checksum manifest
# --------------------------------------------------------------------------------------------


def test_data_dir_default_and_override(clean, tmp_path):
    assert settings.data_dir() == tmp_path / "home" / ".cache" / "dl-course" / "data"
    assert settings.data_dir() == settings.default_data_dir()
    clean.setenv("COLAB_RELEASE_TAG", "release")
    assert settings.data_dir() == Path("/content/course-data")  # Colab's disk, not created here
    clean.setenv("COURSE_DATA_DIR", "~/elsewhere")
    assert settings.data_dir() == tmp_path / "home" / "elsewhere"  # ~ expanded, Colab or not
    clean.setenv("COURSE_DATA_DIR", "  ")
    assert settings.data_dir() == Path("/content/course-data")  # blank is unset
    assert not (tmp_path / "home").exists()  # nothing is created by reading a setting


def test_mirror_and_checksums_as_written(clean):
    assert settings.data_mirror() is None and settings.data_checksums() is None
    clean.setenv("COURSE_DATA_MIRROR", " http://192.168.1.10:8000 ")
    clean.setenv("COURSE_DATA_CHECKSUMS", "~/SHA256SUMS")
    assert settings.data_mirror() == "http://192.168.1.10:8000"
    assert settings.data_checksums() == "~/SHA256SUMS"  # expanded by utils.data, which may read a URL


# --------------------------------------------------------------------------------------------
# read(): all at once, as they are now
# --------------------------------------------------------------------------------------------


def test_read_gives_every_setting_and_sees_changes_at_once(clean, tmp_path):
    now = settings.read()
    assert now == settings.Settings(
        profile=None,
        emulate=None,
        offline=False,
        checks_strict=False,
        data_dir=tmp_path / "home" / ".cache" / "dl-course" / "data",
        data_mirror=None,
        data_checksums=None,
        platform="local",
    )
    clean.setenv("COURSE_PROFILE", "gpu")
    clean.setenv("COURSE_EMULATE", "tpu")
    clean.setenv("COURSE_OFFLINE", "yes")
    clean.setenv("COURSE_CHECKS_STRICT", "1")
    clean.setenv("COURSE_DATA_DIR", str(tmp_path / "d"))
    clean.setenv("BINDER_REQUEST", "v2/gh/x")
    later = settings.read()  # not cached: a notebook that sets a variable sees it at once
    assert (later.profile, later.emulate, later.offline, later.checks_strict) == ("gpu", "tpu", True, True)
    assert later.data_dir == tmp_path / "d" and later.platform == "binder"
    clean.setenv("COURSE_CHECKS_STRICT", "sometimes")
    with pytest.raises(settings.SettingError, match="COURSE_CHECKS_STRICT"):
        settings.read()


def test_every_variable_is_documented_in_the_module():
    for name in COURSE_VARIABLES:
        assert f"``{name}``" in settings.__doc__, name


def test_imports_only_the_standard_library():
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import utils.settings\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    added = json.loads(out.stdout)
    assert "utils.settings" in added
    outside = [
        m
        for m in added
        if m not in ("utils", "utils.settings") and m.split(".")[0] not in sys.stdlib_module_names
    ]
    assert outside == [], f"importing utils.settings imported more than the standard library: {outside}"
    assert not [m for m in added if m.split(".")[0] in ("numpy", "tensorflow", "keras")]
