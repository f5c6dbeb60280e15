"""The one way the course's tools execute a notebook: a fresh kernel, nbclient, and what came of it.

Used by ``benchmarks/run_notebooks.py`` (times, memory, checkpoints), ``tools/build_site.py`` (the
executed copies the site renders), ``tools/offline_rehearsal.py`` (``.ci/offline``: the lessons on
a copied data folder with the network cut), ``benchmarks/gpu_shapes.py`` (the shape run) and
``benchmarks/startup.py`` (time to first cell)::

    from tools.notebook_runner import run_notebook

    result = run_notebook(Path("notebooks/01_tensors_and_gradients.ipynb"), timeout=600, memory=True)
    print(result.seconds, result.error, result.memory)

What every caller gets, whether or not it asks:

- the notebook file is read, never written; the executed copy is ``result.nb``;
- no imitation of an ipywidgets front end: nbclient's imitation of Output widgets intermittently
  left a finished cell waiting forever with the lessons' explorers (cf. jupyter/nbclient#312), and
  without it what an explorer draws at its starting values lands in the cell's own outputs
  (where the static site shows it);
- the kernel's own log is quiet (``--IPKernelApp.log_level=ERROR``: no start-up warning about plain
  TCP on 127.0.0.1); errors still show, and ``kernel_stderr`` can send them to a file;
- a failure is reported, not raised: ``result.error`` says which cell (its index in the notebook
  file, markdown cells counted) and what, and ``result.errors`` lists every error output.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import nbformat

from tools.memory import Peak, PeakSampler

__all__ = ["CellError", "RunResult", "child_env", "run_notebook"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]


@dataclass
class CellError:
    """An error output of one cell."""

    index: int | None  # the cell's index in the notebook file (markdown counted); None: an added cell
    cell_id: str
    ename: str
    evalue: str  # first line, colour codes removed
    source: str  # the cell's first non-blank line
    added: str | None = None  # "before" or "after" for a cell given in ``before=``/``after=``

    def __str__(self) -> str:
        where = f"cell {self.index} (id {self.cell_id})" if self.index is not None else f"{self.added} cell"
        return f"{where}: {self.ename}: {self.evalue}"


@dataclass
class RunResult:
    """What came of one run. ``error`` is what stopped it (None if it ran to the end)."""

    path: Path
    nb: Any  # the executed nbformat.NotebookNode, added cells included
    seconds: float  # wall time, kernel start and shutdown included
    cell_seconds: dict[int, float] = field(default_factory=dict)  # file cell index -> seconds
    error: str | None = None
    errors: list[CellError] = field(default_factory=list)
    timed_out: bool = False
    memory: Peak | None = None
    added_before: int = 0  # how many cells were put in front of the file's cells
    added_after: int = 0  # how many were put after them

    @property
    def ok(self) -> bool:
        """True when the run reached the end and no cell has an error output."""
        return self.error is None and not self.errors

    def stream(self, name: str = "stdout") -> str:
        """Return everything the cells printed to ``name`` ("stdout" or "stderr"), in order."""
        return "".join(self.stream_chunks(name))

    def stream_chunks(self, name: str | None = "stdout") -> list[str]:
        """Return the stream outputs of ``name`` one by one, in order (None: stdout and stderr both)."""
        return [
            out.get("text", "")
            for cell in self.nb.cells
            for out in cell.get("outputs", [])
            if out.get("output_type") == "stream" and name in (None, out.get("name"))
        ]

    def file_index(self, nb_index: int) -> int | None:
        """The index in the notebook file of the executed notebook's cell ``nb_index`` (None: added)."""
        i = nb_index - self.added_before
        n_file = len(self.nb.cells) - self.added_before - self.added_after
        return i if 0 <= i < n_file else None


def _first_line(text: str) -> str:
    lines = ANSI.sub("", text or "").strip().splitlines()
    return lines[0] if lines else ""


def run_notebook(
    path: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: int | None = 600,
    cwd: Path | str | None = None,
    kernel_name: str = "python3",
    allow_errors: bool = False,
    memory: bool | PeakSampler = False,
    memory_interval: float = 0.1,
    before: Iterable[str] = (),
    after: Iterable[str] = (),
    kernel_stderr: IO | None = None,
    kernel_args: list[str] | None = None,
) -> RunResult:
    """Execute the notebook at ``path`` in a fresh kernel and return a :class:`RunResult`.

    ``env``: the kernel's whole environment (default: this process's). ``timeout``: seconds per
    cell (None: no limit). ``cwd``: the kernel's working folder (default: the notebook's folder).
    ``allow_errors``: go on after a failing cell (the errors are in ``result.errors``).
    ``memory``: True to sample the kernel's peak memory (:mod:`tools.memory`), or a
    :class:`~tools.memory.PeakSampler` of your own (not started; its pid is set here).
    ``before``/``after``: code cells run in front of / after the file's cells (in memory only).
    ``kernel_stderr``: a file for the kernel process's own stderr. ``kernel_args``: extra kernel
    arguments (default: a quiet kernel log).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    before, after = list(before), list(after)
    nb.cells[:0] = [nbformat.v4.new_code_cell(code) for code in before]
    nb.cells.extend(nbformat.v4.new_code_cell(code) for code in after)
    result = RunResult(path=path, nb=nb, seconds=0.0, added_before=len(before), added_after=len(after))

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd if cwd is not None else path.parent)}},
        extra_arguments=QUIET_KERNEL if kernel_args is None else kernel_args,
    )
    # No imitation of a widget front end (see the module's docstring; jupyter/nbclient#312).
    client.comm_open_handlers = {"jupyter.widget": lambda msg: None}

    current: dict[str, Any] = {"index": None, "start": 0.0}

    def on_cell_execute(cell, cell_index):
        current["index"], current["start"] = cell_index, time.perf_counter()

    def on_cell_executed(cell, cell_index, execute_reply):
        index = result.file_index(cell_index)
        if index is not None:
            result.cell_seconds[index] = time.perf_counter() - current["start"]

    client.on_cell_execute = on_cell_execute
    client.on_cell_executed = on_cell_executed

    def kernel_pid() -> int | None:
        return getattr(getattr(client.km, "provisioner", None), "pid", None)

    sampler = None
    if memory:
        sampler = memory if isinstance(memory, PeakSampler) else PeakSampler(interval=memory_interval)
        sampler.target = kernel_pid

    start_kwargs: dict[str, Any] = {}
    if env is not None:
        start_kwargs["env"] = dict(env)
    if kernel_stderr is not None:
        start_kwargs["stderr"] = kernel_stderr

    start = time.perf_counter()
    if sampler is not None:
        sampler.start()
    try:
        client.execute(**start_kwargs)
    except CellTimeoutError:
        result.timed_out = True
        result.error = f"timed out: {_where(result, nb, current['index'])} ran longer than {timeout} s"
    except CellExecutionError:
        pass  # the cell's error output says what; read below
    except Exception as exc:  # a dead kernel, a kernel that would not start
        where = _where(result, nb, current["index"])
        result.error = f"{where}: {type(exc).__name__}: {_first_line(str(exc))}"[:300]
    finally:
        if sampler is not None:
            result.memory = sampler.stop()
    result.seconds = time.perf_counter() - start

    for nb_index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            index = result.file_index(nb_index)
            added = None if index is not None else ("before" if nb_index < len(before) else "after")
            result.errors.append(
                CellError(
                    index=index,
                    cell_id=str(cell.get("id", "?")),
                    ename=str(out.get("ename", "")),
                    evalue=_first_line(str(out.get("evalue", ""))),
                    source=next((ln for ln in cell.source.splitlines() if ln.strip()), "")[:80],
                    added=added,
                )
            )
    if result.error is None and result.errors and not allow_errors:
        result.error = str(result.errors[0])[:300]
    return result


def _where(result: RunResult, nb, nb_index: int | None) -> str:
    if nb_index is None:
        return "before the first cell"
    index = result.file_index(nb_index)
    if index is None:
        return "an added cell"
    return f"cell {index} (id {nb.cells[nb_index].get('id', '?')})"


def child_env(**changes: str | None) -> dict[str, str]:
    """This process's environment with ``changes`` applied (a value of None removes the variable)."""
    env = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
