"""README.md's names, checked: every name of its library tables imports from the module the table names
(a keyword written ``f(k=)`` must be a parameter of ``f``), each technique beyond the lectures has its paper,
its import and its study recipe (with a ``--tune`` strength where the README says so), every ``--flag`` it
mentions is one of the command line's, every ``docs/`` page and section it points to exists, and the
demo line names every demo.  (Its commands run in tests/test_readme.py.)"""
from __future__ import annotations

import importlib
import inspect
import re

from _helpers.readme import BLOCKS, README, ROOT, table

from regularkit.cli.args import build_parser
from regularkit.demos import DEMOS
from regularkit.study.recipes import RECIPES, STRENGTHS
from regularkit.train.config import ACTIVATIONS


def test_the_demo_comment_names_every_demo():
    line = next(line for _, body in BLOCKS for line in body.splitlines() if line.startswith("regularkit demo "))
    also = re.search(r"also ([\w, -]+)$", line)
    assert also, line
    named = [line.split()[2], *also.group(1).split(", ")]
    assert sorted(named) == sorted(DEMOS)


# --------------------------------------------------------------------------- the library tables

def _resolve(modules: list, token: str) -> object:
    """``token`` (``name``, ``a.b``, ``prefix_*``) from the first of ``modules`` that has it."""
    for module in modules:
        obj = module
        try:
            if token.endswith("*"):
                return next(getattr(module, n) for n in dir(module) if n.startswith(token[:-1]))
            for part in token.split("."):
                obj = getattr(obj, part)
            return obj
        except (AttributeError, StopIteration):
            continue
    raise AssertionError(f"{token!r} is in none of {[m.__name__ for m in modules]}")


def _check_names(modules: list, cell: str) -> int:
    """Every backticked name of ``cell`` resolves; ``f(a=, b=)``: ``f`` takes ``a`` and ``b``."""
    checked = 0
    activations = "(activation=)" in cell
    for token in re.findall(r"`([^`]+)`", cell):
        if token.startswith("docs/"):
            assert (ROOT / token).is_file(), token
            continue
        m = re.fullmatch(r"([\w.]+)\(([\w=, ]*)\)", token)
        if m:
            params = inspect.signature(_resolve(modules, m.group(1))).parameters
            for kw in filter(None, (k.strip().rstrip("=") for k in m.group(2).split(","))):
                assert kw in params, f"{m.group(1)} takes no {kw}="
        elif activations and token in ACTIVATIONS:
            pass  # a value of MLP(activation=), checked against the names the models accept
        else:
            assert re.fullmatch(r"[A-Za-z_][\w.]*\*?", token), f"cannot check {token!r}"
            _resolve(modules, token)
        checked += 1
    return checked


def test_every_name_of_the_library_table_imports_from_its_module():
    rows = table("## The library, by lecture topic")
    assert len(rows) >= 15
    for topic, module_cell, names in rows:
        modules = [importlib.import_module(m) for m in re.findall(r"`(regularkit[\w.]*)`", module_cell)]
        assert modules, topic
        assert _check_names(modules, names) >= 1, topic


BEYOND = ("DropBlock", "alpha dropout", "RandAugment", "TrivialAugmentWide", "AutoAugment", "AugMix", "SAM, ASAM",
          "R-Drop", "Manifold MixUp", "knowledge distillation", "spectral normalization", "gradient clipping",
          "confidence penalty", "random resized crop", "Gaussian blur", "decoupled weight decay")


def test_beyond_the_lectures_names_each_technique_its_paper_its_import_and_its_recipe():
    rows = table("**Beyond the lectures**")
    assert sorted(r[0] for r in rows) == sorted(BEYOND)
    for technique, paper, where, _checked_against, recipe in rows:
        assert re.search(r"(19|20)\d\d", paper), f"{technique}: no paper year in {paper!r}"
        names = re.findall(r"`([^`]+)`", where)
        assert names, technique
        for name in names:  # noqa: the submodule imported, so that regularkit.<module> is an attribute
            importlib.import_module("regularkit." + name.split("(")[0].rsplit(".", 1)[0])
        _check_names([importlib.import_module("regularkit")], where)
        recipes = [t for t in re.findall(r"`([^`]+)`", recipe) if re.fullmatch(r"[a-z0-9+.-]+", t)]
        assert recipes or recipe.startswith("none"), technique
        for name in recipes:
            assert name in RECIPES, f"{technique}: no recipe {name!r}"
            assert (name in STRENGTHS) != ("no strength" in recipe), f"{technique}: {name!r} strength"


# --------------------------------------------------------------------------- flags and links

def _all_flags() -> set[str]:
    parser = build_parser()
    flags = set(parser._option_string_actions)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            flags |= set(sub._option_string_actions)
    return flags


def test_every_flag_the_readme_names_exists():
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", README))
    assert len(named) > 30
    assert sorted(named - _all_flags()) == []


def test_the_study_options_paragraph_lists_study_flags_only():
    paragraph = README[README.index("Options of `regularkit study`"):].split("\n\n")[0]
    listed = set(re.findall(r"`(--[a-z-]+)", paragraph))
    study = next(a for a in build_parser()._subparsers._group_actions).choices["study"]
    assert sorted(listed - set(study._option_string_actions)) == []


def test_every_docs_page_the_readme_names_exists_and_its_sections():
    pages = set(re.findall(r"docs/[\w./-]+\.(?:md|png|toml)", README))
    assert "docs/results.md" in pages and "docs/models.md" in pages
    for page in pages:
        assert (ROOT / page).is_file(), page
    flat = README.replace("\n", " ")
    for page, section in re.findall(r"(docs/[\w-]+\.md), section (\d+)", flat):
        assert re.search(rf"^## {section}\. ", (ROOT / page).read_text(), re.M), (page, section)
    for page, title in re.findall(r'(docs/[\w-]+\.md), "([^"]+)"', flat):
        assert re.search(rf"^#+ {re.escape(title)}", (ROOT / page).read_text(), re.M), (page, title)
    for topic in re.search(r"one page per topic \(([^)]*)\)", README.replace("\n", " ")).group(1).split(", "):
        assert (ROOT / "docs" / f"{topic}.md").is_file(), topic
