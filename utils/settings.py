"""The course's settings: every ``COURSE_*`` variable and the platform facts, read in one place.

This module is the bottom layer of ``utils``: it imports only the standard library, and every
other module (``env``, ``data``, ``checks``), the tools and the CI scripts read settings through it,
so that each variable has one meaning everywhere.

The variables:

=========================  =====================================================================
``COURSE_PROFILE``         smoke, cpu or gpu: how much each notebook trains (unset: chosen by device)
``COURSE_EMULATE``         t4, l4, a100 or tpu: decide as on that device, compute on this CPU
``COURSE_OFFLINE``         a flag: never touch the network (cached and bundled data only)
``COURSE_CHECKS_STRICT``   a flag: a lab check that does not pass raises (the test suite sets it)
``COURSE_DATA_DIR``        where downloaded data is cached
``COURSE_DATA_MIRROR``     a URL or folder tried before the official download addresses
``COURSE_DATA_CHECKSUMS``  a SHA256SUMS manifest for files the registry has no checksum for
=========================  =====================================================================

A flag is true for ``1``, ``true``, ``yes`` or ``on`` and false for unset, empty, ``0``,
``false``, ``no`` or ``off`` (any case). Any other value is an error that says so, rather than a
silent guess: ``COURSE_OFFLINE=of`` is a typo, not a choice.

Values are read when asked for, not cached, so a notebook (or a test) that sets a variable sees
its effect at once.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EMULATIONS",
    "PLATFORMS",
    "PROFILES",
    "Settings",
    "SettingError",
    "checks_strict",
    "choice",
    "data_checksums",
    "data_dir",
    "data_mirror",
    "default_data_dir",
    "emulate",
    "flag",
    "offline",
    "on_colab",
    "path",
    "platform",
    "profile",
    "read",
    "text",
    "tpu_address",
]

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})

PROFILES = ("smoke", "cpu", "gpu")
EMULATIONS = ("t4", "l4", "a100", "tpu")
PLATFORMS = ("colab", "kaggle", "binder", "jupyterhub", "local")


class SettingError(ValueError):
    """A ``COURSE_*`` variable holds a value the course cannot use; the message names the choices."""


def text(name: str) -> str | None:
    """Return the variable's value with surrounding spaces removed, or None when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or None


def flag(name: str) -> bool:
    """Return the variable as a flag (see the module's docstring for what counts as true)."""
    value = (text(name) or "").lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise SettingError(
        f"{name}={os.environ.get(name)!r} is neither on nor off. "
        f"Use 1, true, yes or on to turn it on; 0, false, no or off (or unset it) to turn it off."
    )


def choice(name: str, choices: tuple[str, ...], *, off: bool = False, what: str | None = None) -> str | None:
    """Return the variable, lower-cased, if it is one of ``choices``; None when unset.

    ``off=True`` also reads the false words of a flag (``0``, ``off``, ``none``...) as unset.
    Any other value raises :class:`SettingError` naming the choices; ``what`` says what the
    value should have been ("a profile"), for a message a learner understands.
    """
    value = (text(name) or "").lower()
    if not value or (off and (value in FALSE or value == "none")):
        return None
    if value not in choices:
        wanted = f"is not {what}. Use one of:" if what else "is not one of:"
        raise SettingError(f"{name}={value!r} {wanted} {', '.join(choices)} (or unset it).")
    return value


def path(name: str) -> Path | None:
    """Return the variable as a path (``~`` expanded), or None when unset or empty."""
    value = text(name)
    return Path(value).expanduser() if value else None


# --------------------------------------------------------------------------------------------
# The platform the kernel runs on
# --------------------------------------------------------------------------------------------


def on_colab() -> bool:
    """Return True inside Google Colab (its module is imported, or its runtime variable is set)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def platform() -> str:
    """Return where this kernel runs: 'colab', 'kaggle', 'binder', 'jupyterhub' or 'local'."""
    if on_colab():
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ or "KAGGLE_URL_BASE" in os.environ:
        return "kaggle"
    if any(k in os.environ for k in ("BINDER_LAUNCH_HOST", "BINDER_REPO_URL", "BINDER_REQUEST")):
        return "binder"
    if "JUPYTERHUB_API_URL" in os.environ:
        return "jupyterhub"
    return "local"


def tpu_address() -> str | None:
    """Return the TPU address a platform advertises (Colab's or a Cloud TPU's), or None."""
    return text("COLAB_TPU_ADDR") or text("TPU_NAME")


# --------------------------------------------------------------------------------------------
# The course's own variables
# --------------------------------------------------------------------------------------------


def profile() -> str | None:
    """Return ``$COURSE_PROFILE`` (smoke, cpu or gpu), or None when unset."""
    return choice("COURSE_PROFILE", PROFILES, what="a profile")


def emulate() -> str | None:
    """Return the device ``$COURSE_EMULATE`` names (t4, l4, a100 or tpu), or None when unset/off."""
    return choice("COURSE_EMULATE", EMULATIONS, off=True, what="a device the course can emulate")


def offline() -> bool:
    """Return True when ``$COURSE_OFFLINE`` is on: then nothing touches the network."""
    return flag("COURSE_OFFLINE")


def checks_strict() -> bool:
    """Return True when ``$COURSE_CHECKS_STRICT`` is on: a check that does not pass raises."""
    return flag("COURSE_CHECKS_STRICT")


def default_data_dir() -> Path:
    """Where data is cached when ``$COURSE_DATA_DIR`` is unset: Colab's disk, else the user's cache."""
    if on_colab():
        return Path("/content/course-data")
    return Path.home() / ".cache" / "dl-course" / "data"


def data_dir() -> Path:
    """Return ``$COURSE_DATA_DIR`` or :func:`default_data_dir` (not created here)."""
    return path("COURSE_DATA_DIR") or default_data_dir()


def data_mirror() -> str | None:
    """Return ``$COURSE_DATA_MIRROR`` (a base URL, a folder or a ``file://`` URL), or None."""
    return text("COURSE_DATA_MIRROR")


def data_checksums() -> str | None:
    """Return ``$COURSE_DATA_CHECKSUMS`` (a manifest's path or URL) as written, or None."""
    return text("COURSE_DATA_CHECKSUMS")


@dataclass(frozen=True)
class Settings:
    """All settings at one moment, for reports and for tools that pass them on."""

    profile: str | None
    emulate: str | None
    offline: bool
    checks_strict: bool
    data_dir: Path
    data_mirror: str | None
    data_checksums: str | None
    platform: str


def read() -> Settings:
    """Return every setting as it is now (raises :class:`SettingError` on an unusable value)."""
    return Settings(
        profile=profile(),
        emulate=emulate(),
        offline=offline(),
        checks_strict=checks_strict(),
        data_dir=data_dir(),
        data_mirror=data_mirror(),
        data_checksums=data_checksums(),
        platform=platform(),
    )
