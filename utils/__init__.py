"""Helpers for the deep-learning course.

``import utils`` is cheap: it imports no TensorFlow. The submodules (``utils.env``,
``utils.data``, ``utils.viz``, ...) are loaded the first time you touch them, so a notebook's
setup cell controls how TensorFlow starts (log level, backend) before it is imported.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "checks",
    "course",
    "data",
    "deploy",
    "distribute",
    "env",
    "labs",
    "live",
    "models",
    "text",
    "settings",
    "update",
    "viz",
    "widgets",
]


def __getattr__(name: str) -> ModuleType:
    """Import a submodule on first access (``utils.env`` works after ``import utils``)."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
