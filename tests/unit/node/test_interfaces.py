"""The house rules between modules, read from the source (AST) rather than trusted:

- nothing outside a room of the peer (``node/peer/pipeline.py`` for
  :class:`~node.peer.pipeline.HospitalPeer`, ``node/peer/intake.py`` for its intake, ...) touches
  that room's underscored members (no call, no read, no override in a subclass): the other
  rooms, tests, benchmarks, the runner and the monitor go through its public methods,
  :mod:`node.peer.mods` and :class:`ModeContext`;
- the modules of ``node`` import one another without a cycle;
- no test or script imports a private name (``from x import _y``);
- ``node/errors.py`` draws the exception tree as the classes really are.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("node", "gossip", "ledger", "scripts", "tests")


def sources(*folders: str) -> Iterator[tuple[Path, ast.Module]]:
    for folder in folders:
        yield from parsed(folder)


@functools.cache
def parsed(folder: str) -> tuple[tuple[Path, ast.Module], ...]:
    return tuple(
        (path, ast.parse(path.read_text(), str(path)))
        for path in sorted((ROOT / folder).rglob("*.py"))
    )


def private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def class_privates(tree: ast.Module, cls: str) -> set[str]:
    """Underscored methods of class ``cls`` and the ``self._x`` attributes its methods set."""
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    names = {
        n.name
        for n in node.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and private(n.name)
    }
    for n in ast.walk(node):
        if (
            isinstance(n, ast.Attribute)
            and isinstance(n.ctx, ast.Store)
            and isinstance(n.value, ast.Name)
            and n.value.id == "self"
            and private(n.attr)
        ):
            names.add(n.attr)
    return names


def other_privates(skip: Path) -> set[str]:
    """Underscored members that some class outside ``skip`` defines or sets."""
    names: set[str] = set()
    for path, tree in sources(*SCANNED):
        if path == skip:
            continue
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            names |= {
                n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
            names |= {
                n.attr
                for n in ast.walk(cls)
                if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
            }
    return {n for n in names if private(n)}


def subclasses_of(root: str, trees: list[tuple[Path, ast.Module]]) -> set[str]:
    found, grew = {root}, True
    while grew:
        grew = False
        for _, tree in trees:
            for cls in (
                n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name not in found
            ):
                if any(ast.unparse(b).split(".")[-1] in found for b in cls.bases):
                    found.add(cls.name)
                    grew = True
    return found - {root}


#: the peer's rooms (node/peer/): the file, its class, and the attribute the peer holds it as
ROOMS = (
    ("pipeline.py", "HospitalPeer", "peer"),
    ("directory.py", "Directory", "directory"),
    ("intake.py", "Intake", "intake"),
    ("outbox.py", "Outbox", "outbox"),
    ("verify.py", "Verifier", "verifier"),
    ("latejoin.py", "LateJoin", "late"),
    ("finalize.py", "Finalizer", "finalizer"),
    ("standardize.py", "FeatureSetup", "setup"),
    ("control.py", "ControlTopics", "control"),
    ("trainer.py", "LocalTrainer", "trainer"),
)
#: underscored members the scan must see (it would pass vacuously if it saw none)
SEEN = {
    "HospitalPeer": {"_deliver", "_aggregate", "_vote", "_finish", "_adopt", "_end_round"},
    "ControlTopics": {"_chain_changed", "_listen_rounds"},
    "Intake": {"_inbox", "_kept", "_serve_relay", "_accept_relayed"},
    "Outbox": {"_sending", "_commits_final", "_budget_declared"},
    "Directory": {"_by_peer"},
}


@pytest.mark.parametrize(("file", "cls", "held_as"), ROOMS, ids=[r[1] for r in ROOMS])
def test_nothing_outside_a_peer_room_touches_its_private_members(file, cls, held_as):
    """No code outside the room's file calls, reads or overrides its class's underscored
    members: the peer, its rooms, tests, benchmarks, the runner and the monitor go through
    public methods, :mod:`node.peer.mods` and :class:`ModeContext`."""
    room_py = ROOT / "node" / "peer" / file
    mine = class_privates(ast.parse(room_py.read_text()), cls)
    assert SEEN.get(cls, set()) <= mine  # the scan sees them
    shared = mine & other_privates(room_py)  # e.g. _send: LedgerClient has one too
    trees = [(p, t) for p, t in sources(*SCANNED) if p != room_py]
    subclasses = subclasses_of(cls, trees)
    found = []
    for path, tree in trees:
        where = path.relative_to(ROOT)
        for sub in (
            n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name in subclasses
        ):
            for n in sub.body:
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in mine:
                    found.append(f"{where}:{n.lineno} {sub.name} overrides {n.name}")
            for n in ast.walk(sub):
                if (
                    isinstance(n, ast.Attribute)
                    and n.attr in mine
                    and ast.unparse(n.value) in ("self", "super()")
                ):
                    found.append(f"{where}:{n.lineno} {sub.name} uses {ast.unparse(n)}")
        for n in ast.walk(tree):
            if not isinstance(n, ast.Attribute) or n.attr not in mine:
                continue
            owner = ast.unparse(n.value)
            if owner in ("self", "cls", "super()"):
                continue  # a class's own member (subclasses are checked above)
            if n.attr not in shared or owner.split(".")[-1].endswith(held_as):
                found.append(f"{where}:{n.lineno} {ast.unparse(n)}")
    assert found == [], f"reach-ins into {cls}:\n" + "\n".join(found)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, tree: ast.Module, modules: set[str]) -> set[str]:
    """The node modules ``path`` imports anywhere in it (top level, functions, TYPE_CHECKING)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            targets = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                anchor = package.split(".")[: len(package.split(".")) - (n.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in n.names
            ]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != me and not me.startswith(t + "."):  # a package's own __init__ is no edge
                out.add(t)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_node_modules():
    trees = list(sources("node"))
    modules = {module_name(p) for p, _ in trees}
    graph = {module_name(p): imports_of(p, t, modules) for p, t in trees}
    assert "node.peer.pipeline" in graph["node.service.runner"]  # the graph sees imports
    assert (
        "node.protection.context" in graph["node.peer.pipeline"]
        or "node.protection" in graph["node.peer.pipeline"]
    )
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_test_or_script_imports_a_private_name():
    found = []
    for path, tree in sources("tests", "scripts"):
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom):
                found += [
                    f"{path.relative_to(ROOT)}:{n.lineno} {n.module}.{a.name}"
                    for a in n.names
                    if private(a.name)
                ]
    assert found == []


TREE_LINE = re.compile(r"^[\s│├└─]*(\w+)(?: \((\w+)\))?\s+\[([\w.]+|here)\]")


def test_the_exception_tree_drawn_in_node_errors_is_the_real_one():
    import builtins

    import node.errors as errors

    drawn: dict[str, type] = {}
    flavour: type | None = None  # inside the "ValueError flavour" / "RuntimeError flavour" branches
    for line in errors.__doc__.splitlines():
        if "flavour" in line:
            flavour = getattr(builtins, line.split()[-2])
            continue
        m = TREE_LINE.match(line)
        if m is None:
            continue
        name, builtin, where = m.groups()
        cls = getattr(importlib.import_module("node.errors" if where == "here" else where), name)
        assert issubclass(cls, errors.MedmeshError), name
        for expected in (getattr(builtins, builtin) if builtin else None, flavour):
            assert expected is None or issubclass(cls, expected), (
                f"{name} is drawn as a {expected.__name__}"
            )
        drawn[name] = cls
    assert len(drawn) >= 20
    # and every subclass of the root that node defines is drawn
    known, defined = {"MedmeshError"}, set()
    trees = [t for _, t in sources("node")]
    for _ in range(3):
        for tree in trees:
            for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
                if any(ast.unparse(b).split(".")[-1] in known for b in cls.bases):
                    known.add(cls.name)
                    defined.add(cls.name)
    assert defined - set(drawn) == set()


@pytest.mark.slow  # a fresh interpreter: ~5 s alone, 12 s on a loaded machine
def test_node_run_starts_without_the_demo_or_scikit_learn():
    """``medmesh node run`` parses its arguments and loads the runner without the demo's
    machinery or scikit-learn (issue 22: ~4 s of every node process's start)."""
    import subprocess
    import sys

    probe = (
        "import sys; from node.cli import build_parser; build_parser(); import node.service.runner; "
        "print(' '.join(m for m in ('node.sim.demo', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""


@pytest.mark.slow  # a fresh interpreter
def test_node_setup_commands_load_neither_torch_nor_opacus(tmp_path):
    """`medmesh node init` and `node add-peer` build only their own command's parser and never
    load the training stack (issue 22: 6.1 -> 2.8 s per call on the shared machine)."""
    import subprocess
    import sys

    probe = (
        "import sys; from node.cli import main; "
        f"main(['node', 'init', '--dir', {str(tmp_path / 'h')!r}, '--name', 'h', '--site', '0', "
        "'--sites', '2', '--listen', '/ip4/127.0.0.1/tcp/4001', '--rpc', 'http://127.0.0.1:8545', "
        "'--deployment', 'd.json']); "
        "print('loaded:', *(m for m in ('torch', 'opacus', 'tenseal', 'node.peer.pipeline') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "loaded:", out.stdout
