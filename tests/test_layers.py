"""The layers of utils point downward: no import cycle, settings at the bottom, one reader of COURSE_*.

Read from the source with ``ast``, without importing anything, so a cycle is reported by name
before it surfaces as a half-initialised module in some notebook.

Which imports count: every ``import`` and ``from ... import`` of a ``utils`` module anywhere in a
file, at the top level *and* inside functions. A function-level import is still a dependency, it
only runs later: the env<->data cycle this test was written against was two function-level imports
(``setup()`` importing ``utils.data``, ``load_sample_photos()`` importing ``utils.env``). Imports
under ``if TYPE_CHECKING:`` do not count: they never run.

An edge goes to the most specific module named (``from utils.data import store`` is an edge to
``utils.data.store``, ``from utils.data import fetch`` one to ``utils.data``). Python initialises a
package before its sub-modules, but that is not an edge: a package that re-exports its
sub-modules (``utils.data``) would otherwise always be a cycle.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "utils"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(UTILS.rglob("*.py"))}


@functools.cache
def _parse(path: Path) -> tuple[str, ast.Module]:
    """The source of ``path`` and its syntax tree, parsed once per test process."""
    source = path.read_text(encoding="utf-8")
    return source, ast.parse(source, filename=str(path))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth, except under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The most specific module of ``modules`` that ``name`` is or lies in, or None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


@functools.cache
def _graph() -> dict[str, set[str]]:
    """utils module -> the utils modules it imports."""
    modules = _modules()
    return {module: _edges(module, path, modules) for module, path in modules.items()}


def _edges(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The utils modules ``module`` imports: for each name imported, the most specific module it is or lies in."""
    _, tree = _parse(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            candidates = [[alias.name] for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from utils import env`` names the module utils.env; ``from utils.env import setup``
            # names utils.env.setup, no module, so the edge goes to utils.env.
            candidates = [[f"{base}.{alias.name}", base] for alias in node.names]
        for names in candidates:
            for name in names:  # the first that is a utils module wins: the most specific
                if name == "utils" or name.startswith("utils."):
                    target = _resolve(name, modules)
                    if target is not None:
                        if target != module:
                            targets.add(target)
                        break
    return targets


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)

    cycles = []
    for group in groups:
        start = min(group)
        # Breadth-first within the group from start back to start: the shortest cycle through it.
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & group):
                    if w == start:
                        cycle = paths[v] + [start]
                        break
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        cycles.append(cycle or sorted(group))
    return cycles


def test_the_graph_sees_the_imports_it_should():
    graph = _graph()
    assert "utils.settings" in graph["utils.env"]
    assert "utils.env" in graph["utils.data.bundled"]  # a function-level import counts
    assert "utils.data.store" in graph["utils.data.cli"] and "utils.data" not in graph["utils.data.cli"]
    assert {"utils.data.registry", "utils.data.cli"} <= graph["utils.data"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_utils_modules():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles among utils modules:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_settings_is_the_bottom_layer():
    """utils.settings imports nothing from utils and nothing outside the standard library."""
    path = UTILS / "settings.py"
    _, tree = _parse(path)
    imported = []
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        else:
            assert node.level == 0, "utils.settings makes a relative import"
            imported.append(node.module or "")
    from_utils = [n for n in imported if n == "utils" or n.startswith("utils.")]
    assert not from_utils, f"utils.settings imports from utils: {from_utils}"
    outside = [n for n in imported if n.split(".")[0] not in sys.stdlib_module_names | {"__future__"}]
    assert not outside, f"utils.settings imports beyond the standard library: {outside}"


def test_env_stands_on_settings_alone():
    """utils.env, the layer above settings, imports no other utils module (data, checks... use it)."""
    assert _graph()["utils.env"] <= {"utils", "utils.settings"}


# --------------------------------------------------------------------------------------------
# Only utils.settings reads a COURSE_* variable
# --------------------------------------------------------------------------------------------


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` (or ``environ`` imported from os)."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _course_constant(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("COURSE_")


def direct_reads(path: Path) -> list[str]:
    """``line: code`` of every place ``path`` reads a COURSE_* variable from the environment.

    Reads: ``os.environ["COURSE_X"]`` (not as an assignment's target), ``os.environ.get("COURSE_X")``,
    ``os.getenv("COURSE_X")`` and ``"COURSE_X" in os.environ``. Writes (``os.environ[...] = ``,
    ``setdefault``, ``pop``, ``update``, a child process's ``env=``) pass a setting on and are allowed.
    """
    source, tree = _parse(path)
    found = []
    for node in sorted(ast.walk(tree), key=lambda n: getattr(n, "lineno", 0)):
        read = False
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            read = _is_environ(node.value) and _course_constant(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            func = node.func
            if func.attr == "get" and _is_environ(func.value):
                read = _course_constant(node.args[0])
            elif func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os":
                read = _course_constant(node.args[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getenv":
            read = bool(node.args) and _course_constant(node.args[0])
        elif (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.In | ast.NotIn)
        ):
            read = _course_constant(node.left) and _is_environ(node.comparators[0])
        if read:
            where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            found.append(f"{where}:{node.lineno}: {ast.get_source_segment(source, node)}")
    return found


def test_the_reader_finder_tells_reads_from_writes(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "a = os.environ['COURSE_PROFILE']\n"
        "b = os.environ.get('COURSE_OFFLINE', '')\n"
        "c = os.getenv('COURSE_EMULATE')\n"
        "d = 'COURSE_DATA_DIR' in os.environ\n"
        "os.environ['COURSE_PROFILE'] = 'smoke'\n"
        "os.environ.setdefault('COURSE_OFFLINE', '1')\n"
        "os.environ.pop('COURSE_EMULATE', None)\n"
        "e = os.environ.get('HOME')\n"
        "subprocess_env = {**os.environ, 'COURSE_OFFLINE': '1'}\n"
    )
    assert [int(r.split(":")[1]) for r in direct_reads(sample)] == [2, 3, 4, 5]


def _python_files(folder: str) -> list[Path]:
    return sorted(p for p in (REPO / folder).rglob("*.py") if p != UTILS / "settings.py")


@pytest.mark.parametrize("folder", ["utils", "tools", "benchmarks"])
def test_only_settings_reads_course_variables(folder):
    reads = [line for path in _python_files(folder) for line in direct_reads(path)]
    assert not reads, (
        "Read COURSE_* through utils.settings (offline(), profile(), data_dir(), ...) instead of "
        "the environment:\n" + "\n".join(reads)
    )
