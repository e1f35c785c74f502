"""The package's import graph: no circle, a lowest floor that knows no one above it, a free ``import logconf``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "logconf"
LOWEST = {  # each module of the lowest floor, and the only package modules it may import
    "logconf.errors": set(),
    "logconf.records": set(),
    "logconf.redact": set(),
    "logconf.reports": set(),
    "logconf.hold": {"logconf.reports"},  # caller_error, for a held record that cannot be formatted
    "logconf.yamlcache": set(),
    "logconf.netfs": {"logconf.errors"},
    "logconf.sources": {"logconf.errors", "logconf.yamlcache"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _target(name: str) -> str | None:
    """The package module that importing ``name`` runs last (a name inside a module counts as the module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _skips(node: ast.AST) -> bool:
    # `if TYPE_CHECKING:` blocks never run
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(module: str) -> set[str]:
    """Every package module that ``module`` imports, at the top or inside a function, by its code."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _skips(node):
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _target(alias.name)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                target = _target(f"{node.module}.{alias.name}")
                if target:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    found.discard(module)
    found.discard("logconf")  # the package's own __init__ imports nothing at run time (checked below)
    return found


def circles() -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    graph = {m: imports_of(m) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph):
        if module not in index:
            connect(module)
    return groups


def test_no_module_imports_one_that_imports_it_back():
    assert circles() == []


def test_the_graph_reader_sees_a_circle_where_there_is_one():
    """The check above can fail: two modules that import each other inside functions are one circle."""
    assert "logconf.config" in imports_of("logconf.ranks") or "logconf.handlers" in imports_of("logconf.ranks")
    assert imports_of("logconf.sources") == {"logconf.errors", "logconf.yamlcache"}
    assert "logconf.sources" in imports_of("logconf.handlers")


def test_the_lowest_floor_imports_nothing_above_it():
    for module, allowed in LOWEST.items():
        assert imports_of(module) <= allowed, module


def test_import_logconf_loads_no_submodule_and_no_logging():
    """``import logconf`` (the start-up hook's first step) costs one small module; names load on first use."""
    code = (
        "import sys\nbefore = set(sys.modules)\nimport logconf\n"
        "print(sorted(set(sys.modules) - before))\n"
        "print(logconf.apply.__module__, logconf.ConfigError.__module__, logconf.set_rank.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    new, homes = done.stdout.splitlines()
    assert new == "['logconf']"
    assert homes == "logconf.config logconf.errors logconf.ranks"


def _loaded_by_apply(tmp_path: Path, setup: str = "", **env: str) -> set[str]:
    """The modules that ``import logconf; logconf.apply()`` loads in a fresh process (after ``setup``)."""
    code = (
        f"import sys\n{setup}\nbefore = set(sys.modules)\n"
        "import logconf\nlogconf.apply()\nprint(sorted(set(sys.modules) - before))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "RAY_"))}
    environ.update(LOGCONF_DIR=str(tmp_path / "logs"), XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ)
    return set(ast.literal_eval(done.stdout))


# Loaded only where they act: retention by a process whose files rotate, hold by a Ray actor without a
# rank, the Loguru bridge where Loguru is imported, the password database where a file name holds {user},
# the exit hint by a driver that dies of an uncaught exception (tests/test_exithint.py), set_rank's module
# where a rank is set; integrations finds
# modules without importlib.util, and the config's file and key are kept without contextvars.
ON_DEMAND = {
    *("logconf.retention", "logconf.hold", "logconf.loguru_bridge", "logconf.exithint", "logconf.ranks"),
    *("pwd", "importlib.util", "contextvars"),
}


def test_apply_loads_only_what_this_process_uses(tmp_path):
    """Every module a process loads is start-up time it pays (unmarshalled code); these wait until they act."""
    loaded = _loaded_by_apply(tmp_path)
    assert "logconf.handlers" in loaded and "logconf.rotation" in loaded  # it sees what apply() loads
    assert loaded & ON_DEMAND == set()


def test_the_modules_loaded_on_demand_load_when_they_act(tmp_path):
    assert "logconf.retention" in _loaded_by_apply(tmp_path, LOGCONF_ROTATE_BYTES="1MB")
    assert "logconf.loguru_bridge" in _loaded_by_apply(tmp_path, "import loguru")
