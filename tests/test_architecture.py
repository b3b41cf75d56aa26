"""The house rules, checked on the source: no import cycles, rooms of bounded size, no hidden lazy imports.

The import graph counts every ``import`` of a regularkit module, at module level
and inside functions alike (a lazy import still makes a cycle); an import of a
module's own parent package is not an edge (a submodule always needs its package).
"""
from __future__ import annotations

import ast
import re
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
    {"recipe"},
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
        "regularkit.models.mlp imports regularkit.study.plan (layer 6 -> 9)"]
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


# --------------------------------------------------------------------------- tests mirror the package
TESTS = Path(__file__).resolve().parent
#: What a package's ``__init__.py`` may define and still be re-exports: a registry's one-line ``get``, lazy
#: attributes (``__getattr__`` / ``__dir__``).  Such an ``__init__`` needs no test file of its own: its
#: ``REGISTRY`` and ``get`` are checked by tests/conformance/test_registries.py, its names by their rooms' tests.
REEXPORT_DEFINITIONS = {"get", "__getattr__", "__dir__"}
#: Modules without their mirrored tests/<room>/test_<module>.py, each with why (issue 21, item 8).  A reason
#: names the test files that test the module instead; they must exist.  Remove an entry when its file is made.
NO_MIRRORED_TEST = {
    "regularkit.__main__": "`python -m regularkit` is one call of cli.main: tests/test_cli.py",
    "regularkit.tta": "re-exports augment.tta (the README's import path): tests/augment/test_tta.py",
    "regularkit.distributed": "re-exports _util.distributed's public helpers: tests/_util/test_distributed.py",
    "regularkit.cli.args": "the grammar, tested through the command line: tests/test_cli.py, tests/test_fuzz_cli.py",
    "regularkit.models": "MODELS and build_model, beside the models: tests/models/test_registry.py",
    "regularkit.demos": "DEMOS and Demo, run by each demo's test: tests/demos/test_bias_variance.py",
    "regularkit.demos.transfer.experiment": "one test file for the transfer demo's rooms: tests/demos/test_transfer.py",
    "regularkit.demos.transfer.report": "one test file for the transfer demo's rooms: tests/demos/test_transfer.py",
    "regularkit.demos.transfer.result": "one test file for the transfer demo's rooms: tests/demos/test_transfer.py",
    "regularkit.demos.transfer.settings": "one test file for the transfer demo's rooms: tests/demos/test_transfer.py",
    "regularkit._util.checks": "in the file it shares with fmt's first tests: tests/_util/test_checks_fmt.py",
    "regularkit.augment.affine": "RandomAffine beside the flips and crops: tests/augment/test_geometric.py",
    "regularkit.config": "tested with the configs built on it: tests/train/test_config.py, "
                         "tests/speedrun/test_config.py",
    "regularkit.data.schema": "Dataset and the shared checks, through every reader: tests/data/test_datasets.py, "
                              "tests/data/test_tables.py, tests/data/test_arrays.py",
    "regularkit.preprocess.base": "the Preprocessor base, through its subclasses: tests/preprocess/test_transforms.py, "
                                  "tests/conformance/test_preprocess.py",
    "regularkit.study.config": "through the plan and the command line: tests/study/test_plan.py, tests/test_cli.py",
    "regularkit.study.results.figures": "through the report: tests/study/test_report_browser.py",
    "regularkit.study.results.figures_regression": "through the regression study: tests/study/test_regression_study.py",
    "regularkit.study.tune.objective": "through search's worker and the CLI: tests/study/run/test_worker.py, "
                                  "tests/test_cli_search.py",
    "regularkit.study.recipes": "re-exports recipe.catalog and recipe.resolve (the old import path): "
                                "tests/recipe/test_catalog.py",
    "regularkit.study.applicability": "re-exports recipe.rules (the old import path): tests/recipe/test_rules.py",
    "regularkit.study.assemble": "re-exports recipe.assemble (the old import path): tests/recipe/test_assemble.py",
    "regularkit.train.model_config": "ModelConfig, with the recipe's other parts: tests/train/test_config.py",
    "regularkit.train.callbacks": "per callback and the shared contract: tests/train/test_early_stopping.py, "
                                  "tests/conformance/test_callbacks.py",
}


def mirrored_test(module: str, path: Path) -> Path | None:
    """tests/<room>/test_<module>.py for a module; None for a re-export ``__init__`` (REEXPORT_DEFINITIONS)."""
    rel = path.relative_to(PACKAGE)
    if path.name == "__init__.py":
        defined = {n.name for n in ast.parse(path.read_text(encoding="utf-8")).body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        if defined <= REEXPORT_DEFINITIONS:
            return None
        # an __init__ with code of its own: the test file named after its package, beside the package's tests
        return TESTS.joinpath(*rel.parts[:-2], f"test_{rel.parts[-2]}.py") if len(rel.parts) > 1 \
            else TESTS / "test_regularkit.py"
    return TESTS.joinpath(*rel.parts[:-1], f"test_{rel.stem}.py")


def test_the_mirror_rule_on_examples():
    assert mirrored_test("regularkit.augment.erase", PACKAGE / "augment" / "erase.py") == \
        TESTS / "augment" / "test_erase.py"
    assert mirrored_test("regularkit.losses", PACKAGE / "losses.py") == TESTS / "test_losses.py"
    assert mirrored_test("regularkit.metrics", PACKAGE / "metrics" / "__init__.py") is None  # re-exports only
    assert mirrored_test("regularkit.models", PACKAGE / "models" / "__init__.py") == TESTS / "test_models.py"


def test_every_module_has_its_mirrored_test_file_or_a_reason():
    """docs/architecture.md: tests mirror the package, one test file per module (issue 21, item 8)."""
    missing = sorted(m for m, p in modules().items()
                     if (t := mirrored_test(m, p)) is not None and not t.exists() and m not in NO_MIRRORED_TEST)
    assert missing == [], "add tests/<room>/test_<module>.py (or an entry with its reason in NO_MIRRORED_TEST)"
    known = modules()
    stale = sorted(m for m in NO_MIRRORED_TEST if m not in known or mirrored_test(m, known[m]) is None
                   or mirrored_test(m, known[m]).exists())
    assert stale == [], "these have their test file now (or are gone): remove them from NO_MIRRORED_TEST"
    named = {f for reason in NO_MIRRORED_TEST.values() for f in re.findall(r"tests/[\w/]+\.py", reason)}
    assert sorted(f for f in named if not (TESTS.parent / f).exists()) == []
