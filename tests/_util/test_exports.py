"""lazy_exports: names resolved from their submodule on first use, unknown names refused, dir lists both."""
import subprocess
import sys

import pytest

import regularkit.data
import regularkit.metrics
import regularkit.study
from regularkit._util.exports import lazy_exports
from regularkit.metrics.paired import paired_interval
from regularkit.study.pipeline import run_study


def test_names_come_from_their_submodule():
    assert regularkit.metrics.paired_interval is paired_interval
    assert regularkit.study.run_study is run_study
    getattr_, _ = lazy_exports("regularkit.metrics", {"mean_std": "summary"})
    from regularkit.metrics.summary import mean_std
    assert getattr_("mean_std") is mean_std


def test_unknown_names_raise_attribute_error_naming_them():
    with pytest.raises(AttributeError, match="module 'regularkit.metrics' has no attribute 'nope'"):
        regularkit.metrics.nope  # noqa: B018
    getattr_, _ = lazy_exports("regularkit.study", {})
    with pytest.raises(AttributeError, match="'run_study'"):
        getattr_("run_study")


def test_dir_lists_the_exports_and_what_is_loaded():
    names = dir(regularkit.data)
    assert {"load_dataset", "Splits", "download", "__name__"} <= set(names) and names == sorted(names)


def test_nothing_is_imported_before_it_is_asked_for():
    code = ("import sys, regularkit.metrics, regularkit.study; "
            "print('scipy.stats' in sys.modules, 'regularkit.study.pipeline' in sys.modules); "
            "regularkit.metrics.adjust; print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]
