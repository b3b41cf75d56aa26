"""regularkit._util.compile: the same mark as torch's decorator, and no torch._dynamo import."""
import subprocess
import sys

import torch

from regularkit._util.compile import MARK, constant_result


def _f(a: int) -> int:
    return a + 1


def _g(a: int) -> int:
    return a + 1


def test_constant_result_sets_what_torch_sets():
    ours = constant_result(_f)
    theirs = torch.compiler.assume_constant_result(_g)
    assert ours is _f and theirs is _g
    assert vars(ours) == vars(theirs) == {MARK: True}


def test_constant_result_is_folded_by_compile():
    calls = []

    @constant_result
    def size_of(n: int) -> int:
        calls.append(n)
        return 3

    def f(x):
        return x * size_of(x.shape[0])

    out = torch.compile(f, backend="eager", fullgraph=True)(torch.ones(4))
    assert torch.equal(out, torch.full((4,), 3.0))


def test_importing_the_augmentations_does_not_import_dynamo():
    code = "import sys, regularkit.augment; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
