"""The house rules, checked on the source: no import cycles, rooms of bounded size, no hidden lazy imports.

The import graph counts every ``import`` of a regularkit module, at module level
and inside functions alike (a lazy import still makes a cycle); an import of a
module's own parent package is not an edge (a submodule always needs its package).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "regularkit"
MAX_LINES = 400
#: Where a function may import a regularkit module: the CLI keeps ``regularkit --help`` and
#: ``regularkit data download`` free of torch by importing each command's library on use.
LAZY_ALLOWED = {"regularkit.cli"}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    parts = name.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return None


def imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every regularkit import of ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, known) if name.startswith("regularkit") else None
            if target and target != module and not module.startswith(target + "."):
                out.append((target, node.lineno, id(node) in in_function))
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: {t for t, _, _ in imports(m, p, known)} for m, p in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
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

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_lazy_imports_only_where_allowed():
    known = modules()
    lazy = [f"{m}:{line} imports {t}" for m, p in known.items() if m not in LAZY_ALLOWED
            for t, line, inside in imports(m, p, known) if inside]
    assert lazy == []


@pytest.mark.parametrize("module", sorted(modules()))
def test_rooms_are_at_most_400_lines(module):
    n = len(modules()[module].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines"


#: The real layer order, lowest first (docs/architecture.md, "Layers"): a room imports only rooms of
#: lower layers.  A new room must be placed here; an import that goes up (or sideways) fails the suite.
LAYERS = (
    {"errors"},
    {"_util"},
    {"config", "targets", "transfer", "preprocess", "noise", "init", "norm", "analysis", "constraints", "data"},
    {"metrics", "augment", "averaging", "spectral"},
    {"losses", "penalties"},
    {"train", "distill"},
    {"models"},
    {"search", "integrations", "distributed"},
    {"study", "speedrun"},
    {"demos", "tta"},
    {"cli"},
    {"__main__"},
)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "regularkit"


def layer_of(name: str) -> int:
    for i, rooms in enumerate(LAYERS):
        if name in rooms:
            return i
    raise KeyError(name)


def upward(g: dict[str, set[str]]) -> list[str]:
    """``"a.b imports c.d (layer 3 -> 5)"`` for every import of a room in the same or a higher layer."""
    out = []
    for module, targets in g.items():
        for target in targets:
            a, b = room(module), room(target)
            if a in ("regularkit", b) or b == "regularkit":
                continue
            if layer_of(b) >= layer_of(a):
                out.append(f"{module} imports {target} (layer {layer_of(a)} -> {layer_of(b)})")
    return sorted(out)


def test_the_layer_checker_finds_an_upward_import():
    assert upward({"regularkit.models.mlp": {"regularkit.study.plan"}}) == [
        "regularkit.models.mlp imports regularkit.study.plan (layer 6 -> 8)"]
    assert upward({"regularkit.study.plan": {"regularkit.models.mlp"}}) == []
    assert upward({"regularkit.noise.dropout": {"regularkit.init"}}) != []  # sideways: same layer


def test_every_room_has_a_layer_and_imports_only_lower_layers():
    g = graph()
    rooms = {room(m) for m in g} - {"regularkit"}
    assert sorted(r for r in rooms if not any(r in layer for layer in LAYERS)) == []
    assert upward(g) == []


def test_every_public_room_is_an_attribute_of_the_package():
    """``regularkit.speedrun`` (and every other public room) works after ``import regularkit`` (issue 21)."""
    import regularkit
    rooms = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())) and not p.name.startswith("_")}
    rooms -= {"cli", "__init__"}  # the command line is not a library room
    assert sorted(rooms - set(regularkit._SUBMODULES)) == []
    assert regularkit.speedrun.__name__ == "regularkit.speedrun"
