"""Python's text: real English (and labelled English) read from the standard library's docstrings."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import io
import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import numpy as np


# Standard-library modules that do something when imported (print, open a browser, need a
# display, write files) or hold no prose worth reading; their sub-modules are skipped too.
_TEXT_SKIP = frozenset(
    {
        "antigravity",
        "this",
        "idlelib",
        "tkinter",
        "turtle",
        "turtledemo",
        "test",
        "tests",
        "lib2to3",
        "readline",
        "rlcompleter",
        "ensurepip",
        "venv",
        "pydoc_data",
        "site",
        "sitecustomize",
        "usercustomize",
        "distutils",
        "curses",
        "pty",
        "tty",
        "encodings",
        "msilib",
        "winreg",
        "winsound",
        "msvcrt",
        "nt",
    }
)


def _skip_text_module(name: str) -> bool:
    return any(p.startswith(("_", "test")) or p in _TEXT_SKIP for p in name.split("."))


@functools.lru_cache(maxsize=1)
def _stdlib_docstrings() -> tuple[tuple[str, str], ...]:
    """(module name, cleaned docstring) for every standard-library module the corpus reads, in order.

    One walk serves both :func:`python_text` and :func:`python_docstrings`, so the labelled texts
    are always among the unlabelled ones. Every module is imported before any docstring is read:
    importing a module can add docstrings to another (on Python 3.13 asyncio's C types get theirs).
    """
    import pkgutil

    quiet = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        warnings.simplefilter("ignore")
        modules = []
        queue = sorted(n for n in sys.stdlib_module_names if not _skip_text_module(n))
        while queue:
            name = queue.pop(0)
            try:
                module = importlib.import_module(name)
            except (Exception, SystemExit):  # absent on this platform, or refuses to import
                continue
            modules.append(module)
            if hasattr(module, "__path__"):  # a package: read its sub-modules too
                subs = sorted(info.name for info in pkgutil.iter_modules(module.__path__, name + "."))
                queue[0:0] = [s for s in subs if not _skip_text_module(s)]
        pairs = []
        for module in modules:
            for text in _docstrings(module):
                cleaned = inspect.cleandoc(text).strip()
                if cleaned:
                    pairs.append((module.__name__, cleaned))
    return tuple(pairs)


@functools.lru_cache(maxsize=1)
def _python_documents() -> tuple[str, ...]:
    """All documents, deduplicated, in a fixed order: pydoc topics, then modules by name."""
    from pydoc_data.topics import topics

    texts = [inspect.cleandoc(topics[key]).strip() for key in sorted(topics)]
    texts += [text for _, text in _stdlib_docstrings()]
    seen: set[str] = set()
    documents = []
    for text in texts:
        if text and text not in seen:
            seen.add(text)
            documents.append(text)
    return tuple(documents)


def _docstrings(module: Any) -> list[str]:
    """The docstrings of a module and of the public classes, functions and methods it defines."""
    found = [module.__doc__] if isinstance(module.__doc__, str) else []
    for key, value in sorted(vars(module).items()):
        if key.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if not (inspect.isclass(value) or inspect.isroutine(value)):
            continue
        if isinstance(value.__doc__, str):
            found.append(value.__doc__)
        if inspect.isclass(value):
            for attr, member in sorted(vars(value).items()):
                if attr.startswith("_"):
                    continue
                if inspect.isroutine(member) or isinstance(member, property):
                    doc = getattr(member, "__doc__", None)
                    if isinstance(doc, str):
                        found.append(doc)
    return found


def python_text(min_chars: int = 200) -> list[str]:
    """Return real English documents that ship with Python, each at least ``min_chars`` long.

    The pydoc help topics (``pydoc_data.topics``) and the docstrings of the standard library's
    modules and of the public classes, functions and methods they define; deduplicated, in a
    fixed order. Reading them imports the standard library quietly (no prints, no warnings),
    skipping modules with side effects (``antigravity``, ``this``, ``tkinter``, tests, ...).
    About 1,500 documents and 1.3 M characters at the default ``min_chars``; under a second
    the first time, instant afterwards.
    """
    return [doc for doc in _python_documents() if len(doc) >= min_chars]


@functools.lru_cache(maxsize=1)
def _python_module_docstrings() -> tuple[tuple[str, str], ...]:
    """(module name, docstring) for every standard-library module the text corpus reads.

    The same walk as :func:`_python_documents`; a text found in more than one module (a
    docstring shared or re-exported) is dropped, since its module is ambiguous.
    """
    pairs = _stdlib_docstrings()
    owners: dict[str, set[str]] = {}
    for name, text in pairs:
        owners.setdefault(text, set()).add(name)
    seen: set[str] = set()
    result = []
    for name, text in pairs:
        if len(owners[text]) == 1 and text not in seen:
            seen.add(text)
            result.append((name, text))
    return tuple(result)


def python_docstrings(min_chars: int = 200) -> list[tuple[str, str]]:
    """Return ``(module_name, docstring)`` pairs from the standard library, each text at least ``min_chars`` long.

    Real labelled English: the label is the module that defines the documented object (for
    example ``"email.message"`` or ``"asyncio.tasks"``), so "which module (or package) is this
    docstring from?" is a classification task whose labels nobody invented. The texts are those
    :func:`python_text` reads (without the pydoc help topics); a text defined in more than one
    module is left out. Deterministic order; quiet (no prints, no warnings).
    """
    return [(name, text) for name, text in _python_module_docstrings() if len(text) >= min_chars]


# Standard-library packages grouped by what they are about: the classes of :func:`docstring_families`.
DOCSTRING_FAMILIES: dict[str, tuple[str, ...]] = {
    "concurrency": ("asyncio", "threading", "multiprocessing", "concurrent", "queue", "subprocess", "sched"),
    "email": ("email", "smtplib", "imaplib", "poplib", "mailbox", "mimetypes"),
    "files": ("pathlib", "os", "shutil", "tarfile", "zipfile", "glob", "tempfile", "gzip", "bz2", "lzma"),
    "logging": ("logging",),
    "network": ("http", "urllib", "socket", "socketserver", "ssl", "ftplib", "nntplib", "wsgiref"),
    "numeric": ("decimal", "math", "statistics", "random", "fractions", "numbers", "cmath"),
    "testing": ("unittest", "doctest", "pdb", "bdb", "traceback"),
    "xml/html": ("xml", "html", "xmlrpc"),
}


def docstring_families(min_chars: int = 80) -> tuple[list[str], np.ndarray, list[str]]:
    """A real, offline text-classification task: which family of the standard library a docstring is from.

    Returns ``(texts, labels, class_names)``: the docstrings of the modules listed in
    :data:`DOCSTRING_FAMILIES` (``asyncio`` and its sub-modules are "concurrency", ``email``
    and ``smtplib`` are "email", ...), each at least ``min_chars`` long, labelled with their
    family's index in ``class_names`` (sorted). About 1,400 texts in 8 classes at the default
    ``min_chars`` on Python 3.11; the exact count depends on the Python version. Nobody wrote
    the labels for this task: a docstring's module is a fact about the code it documents.
    """
    import numpy as np

    class_names = sorted(DOCSTRING_FAMILIES)
    family_of = {m: i for i, f in enumerate(class_names) for m in DOCSTRING_FAMILIES[f]}
    texts, labels = [], []
    for module, text in python_docstrings(min_chars):
        top = module.split(".")[0]
        if top in family_of:
            texts.append(text)
            labels.append(family_of[top])
    return texts, np.asarray(labels, dtype="int64"), class_names
