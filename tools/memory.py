"""Honest memory figures for a kernel and its children: proportional set size (PSS), sampled.

The resident set size (RSS) of a process counts every page it maps, shared or not: TensorFlow's
shared libraries (hundreds of MB) count once in the kernel and once more in each worker process
it starts, so a sum of RSS over a process tree over-states what the machine holds. PSS divides
each page among the processes that share it, so a sum of PSS over processes counts every page
once: that is what an instructor sizes a JupyterHub by.

Where it comes from, best first (the figure says which it is):

- ``pss``: ``/proc/<pid>/smaps_rollup`` (Linux 4.14 and later), read directly;
- ``pss``: psutil's ``memory_full_info().pss`` (Linux: the same numbers, read through smaps);
- ``rss``: psutil's ``memory_info().rss``, where PSS cannot be read (macOS, Windows, or another
  user's process). Sums of RSS over a tree count shared pages several times; the label says so.

:class:`PeakSampler` records, over a run, the peak of the kernel alone and the peak of the kernel
with all its descendants (summed at the same instant).

PSS divides a shared page among *all* the processes that map it, this run's or not: while other
TensorFlow processes run on the machine (another notebook, a test suite), they take their share
of TensorFlow's libraries and the figures come out lower than on an idle machine (a fresh
``import tensorflow`` maps about 430 MB of library pages). Measure on an otherwise idle machine;
:func:`processes_mapping` counts who else maps a library, to say so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["MB", "Peak", "PeakSampler", "Sample", "process_memory", "processes_mapping", "tree_memory"]

MB = 2**20


def _smaps_rollup(pid: int) -> tuple[int, int] | None:
    """Return ``(pss, rss)`` of ``pid`` in bytes from /proc/<pid>/smaps_rollup, or None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    figures = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Pss", "Rss"):
            figures[key] = int(rest.split()[0]) * 1024  # the kernel writes kB
    if "Pss" not in figures:
        return None
    return figures["Pss"], figures.get("Rss", 0)


def process_memory(pid: int) -> tuple[int, str, int] | None:
    """Return ``(bytes, measure, rss)`` for one process, measure ``"pss"`` or ``"rss"``; None if gone."""
    rollup = _smaps_rollup(pid)
    if rollup is not None:
        return rollup[0], "pss", rollup[1]
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return None
    try:
        full = proc.memory_full_info()
        if getattr(full, "pss", None) is not None:
            return int(full.pss), "pss", int(full.rss)
    except (psutil.Error, NotImplementedError):
        pass
    try:
        rss = int(proc.memory_info().rss)
    except psutil.Error:
        return None
    return rss, "rss", rss


def processes_mapping(fragment: str = "libtensorflow_framework", exclude: int | None = None) -> list[int]:
    """Return the pids of processes that map a file whose path contains ``fragment`` (Linux; else []).

    ``exclude``: leave out this process and its descendants. Processes of other users, whose maps
    cannot be read, are not counted.
    """
    skip = set()
    if exclude is not None:
        try:
            parent = psutil.Process(exclude)
            skip = {exclude, *(c.pid for c in parent.children(recursive=True))}
        except psutil.Error:
            skip = {exclude}
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid in skip:
            continue
        try:
            if fragment in (entry / "maps").read_text():
                found.append(pid)
        except (OSError, UnicodeDecodeError):
            continue
    return sorted(found)


@dataclass
class Sample:
    """One reading of a process tree, in bytes."""

    kernel: int  # the process itself
    tree: int  # it and all its descendants
    measure: str  # "pss", or "rss" if any process had to be measured by RSS
    tree_rss: int  # the sum of RSS over the tree (counts shared pages once per process)


def tree_memory(pid: int) -> Sample | None:
    """Return a :class:`Sample` of ``pid`` and its descendants now; None if ``pid`` is gone.

    The measure is ``"pss"`` only if every process in the tree was measured by PSS; one RSS figure
    in the sum makes it ``"rss"`` (an over-estimate, labelled as such).
    """
    own = process_memory(pid)
    if own is None:
        return None
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        children = []
    sample = Sample(kernel=own[0], tree=own[0], measure=own[1], tree_rss=own[2])
    for child in children:
        figure = process_memory(child.pid)
        if figure is None:  # ended between listing and reading
            continue
        sample.tree += figure[0]
        sample.tree_rss += figure[2]
        if figure[1] != "pss":
            sample.measure = figure[1]
    return sample


@dataclass
class Peak:
    """The largest figures seen over a run, in bytes."""

    kernel: int = 0  # the kernel process alone
    tree: int = 0  # the kernel and all its descendants, summed at one instant
    measure: str = "pss"  # "pss", or "rss" if any sample had to fall back to RSS
    samples: int = 0
    tree_rss: int = 0  # the kernel and its descendants by summed RSS: shared libraries counted again

    def __str__(self) -> str:
        name = self.measure.upper()
        return f"peak {name} kernel {self.kernel / MB:.0f} MB, with children {self.tree / MB:.0f} MB"


class PeakSampler:
    """A thread that samples a process tree every ``interval`` seconds and keeps the peaks.

    ``pid`` is a number or a callable returning one (or None while the process has not started, as
    a kernel that is still being launched); ``target`` holds that callable and may be replaced
    before :meth:`start`::

        with PeakSampler(lambda: client.km.provisioner.pid) as sampler:
            client.execute()
        print(sampler.peak)
    """

    def __init__(self, pid: int | Callable[[], int | None] | None = None, interval: float = 0.1):
        self.target: Callable[[], int | None] = pid if callable(pid) else (lambda: pid)
        self.interval = interval
        self.peak = Peak()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def sample(self) -> None:
        """Take one sample now (the thread calls this; call it yourself for a last reading)."""
        try:
            pid = self.target()
        except Exception:  # e.g. the kernel manager is not there yet
            pid = None
        if not pid:
            return
        sample = tree_memory(pid)
        if sample is None:
            return
        peak = self.peak
        peak.kernel = max(peak.kernel, sample.kernel)
        peak.tree = max(peak.tree, sample.tree)
        peak.tree_rss = max(peak.tree_rss, sample.tree_rss)
        if sample.measure != "pss":
            peak.measure = sample.measure
        peak.samples += 1

    def _run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def stop(self) -> Peak:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.peak

    def __enter__(self) -> PeakSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
