"""Streamed study data (``--stream``): chosen when the decoded data would not fit, the same numbers as in
memory, and a study on an image folder larger than a memory limit finishes under that limit."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from regularkit._util import memory
from regularkit.cli import main
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study.data import prepare_data, stream_reason

ROOT = Path(__file__).resolve().parents[2]


def folder(root, n=20, side=8):
    """Three classes of ``n`` small RGB images, each class with one channel at full brightness."""
    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            a[..., c] = 255
            Image.fromarray(a).save(root / f"c{c}" / f"{i}.png")
    return root


class Items(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def test_auto_streams_only_what_would_not_fit_and_the_plan_line_says_why(tmp_path, monkeypatch):
    root = folder(tmp_path / "imgs")
    cfg = StudyConfig(data=str(root), image_size=(6, 6), workers=1, batch_size=4)
    held = prepare_data(cfg)
    assert not held.splits.streamed and "streamed" not in held.description
    need = 2 * 60 * 3 * 6 * 6 * 4  # two decoded copies of 60 images of 3 x 6 x 6 float32
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * need - 2)
    sample = 3 * 6 * 6 * 4
    assert stream_reason(cfg, need // 2, sample) != "" and stream_reason(cfg, need // 2 - 1, sample) == ""
    # not even a batch would fit streamed: held in memory, where the loader's refusal says what to change
    assert stream_reason(cfg, need // 2, need) == ""
    streamed = prepare_data(cfg)
    assert streamed.splits.streamed and streamed.digest == held.digest  # the files' digest either way
    assert streamed.description.endswith(f"; streamed from disk (decoded they would need {need / 2**30:.2g} GiB, "
                                         f"more than 50% of the {(2 * need - 2) / 2**30:.2g} GiB available; "
                                         "--stream off to refuse instead)")
    np.testing.assert_array_equal(streamed.splits.val_idx, held.splits.val_idx)
    assert torch.equal(streamed.splits.x_val.load(), held.splits.x_val)
    with pytest.raises(RegularkitError, match=r"^image folder '.*imgs' \(60 images of 3×6×6 float32, twice while "
                                              r"loading\) needs .* GiB, more than 50% of the .* GiB available"):
        prepare_data(StudyConfig(data=str(root), image_size=(6, 6), stream="off"))
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 4 * 32 * 3 * 8 * 8 * 4)  # four batches of 8 x 8
    assert prepare_data(StudyConfig(data=str(root), stream="on")).description.endswith(
        "; streamed from disk (--stream on)")
    with pytest.raises(RegularkitError, match=r"^a streamed batch \(32 samples of .* GiB, held four times: decoded, "
                                              r"collated, prefetched\) needs .* GiB, .*; pass a smaller --image-size"):
        prepare_data(StudyConfig(data=str(root), image_size=(100, 100), stream="on"))
    with pytest.raises(RegularkitError, match=r"^stream must be one of .*got 'yes'"):
        StudyConfig(stream="yes")


def test_torch_datasets_stream_with_a_digest_of_their_content():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(50, 4, generator=g), torch.arange(50) % 2
    on, off = StudyConfig(stream="on", workers=1), StudyConfig(stream="off", workers=1)
    streamed, held = prepare_data(on, Items(x, y)), prepare_data(off, Items(x, y))
    assert streamed.splits.streamed and streamed.digest.startswith("stream:") and held.digest.startswith("arrays:")
    assert prepare_data(on, Items(x.clone(), y)).digest == streamed.digest
    np.testing.assert_array_equal(streamed.splits.train_idx, held.splits.train_idx)
    assert torch.equal(streamed.splits.x_test.load(), held.splits.x_test)
    x[0, 0] = 0.5
    assert prepare_data(on, Items(x, y)).digest != streamed.digest


@pytest.mark.slow
def test_a_streamed_study_reports_the_numbers_of_the_study_in_memory(tmp_path, capsys):
    root = folder(tmp_path / "imgs")
    common = ["study", "--data", str(root), "--recipes", "baseline,dropout", "--seeds", "1", "--epochs", "3",
              "--workers", "1", "--no-progress"]
    assert main([*common, "--stream", "on", "--out", str(tmp_path / "on")]) == 0
    assert "streamed from disk (--stream on)" in capsys.readouterr().out
    assert main([*common, "--stream", "off", "--out", str(tmp_path / "off")]) == 0
    on, off = ((tmp_path / o / "results.csv").read_text() for o in ("on", "off"))
    assert on == off  # errors, gap, ECE, sparsity: every column


LIMITED = textwrap.dedent("""
    import resource, sys
    import regularkit.cli, regularkit.study.pipeline  # the heavy imports before the limit
    import torch._dynamo  # imported by torch when the first optimizer is built: before the limit, as the rest
    from regularkit.cli import main
    from regularkit.data import images, streaming
    size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (size + int(sys.argv[1]) * 2**20, resource.RLIM_INFINITY))
    refusal = streaming.check_fits
    streaming.check_fits = lambda *a: None  # the in-memory path with its refusal taken away: it cannot fit
    try:
        images.load_image_folder(sys.argv[2], image_size=128)
        print("raw: loaded", flush=True)
    except MemoryError:
        print("raw: MemoryError", flush=True)
    streaming.check_fits = refusal
    args = ["study", "--data", sys.argv[2], "--image-size", "128", "--recipes", "baseline", "--seeds", "1",
            "--epochs", "1", "--workers", "1", "--threads", "1", "--widths", "16", "--no-progress"]
    for mode in ("off", "auto"):
        print(mode, "exit", main([*args, "--stream", mode, "--out", f"{sys.argv[3]}/{mode}"]), flush=True)
""")


@pytest.mark.slow
def test_a_study_on_an_image_folder_larger_than_a_memory_limit_finishes_under_it(tmp_path):
    """900 images decoded at 3 x 128 x 128 are 0.17 GiB, 0.33 GiB while loading; the process may grow by 0.24 GiB
    (the streamed study grows by 0.18 GiB: the model, a batch, the report's figures)."""
    root = folder(tmp_path / "imgs", n=300)
    env = {**os.environ, "MALLOC_ARENA_MAX": "1", "PYTHONPATH": str(ROOT / "src")}  # one malloc arena: less reserved
    run = subprocess.run([sys.executable, "-c", LIMITED, "250", str(root), str(tmp_path)], capture_output=True,
                         text=True, timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "raw: MemoryError" in out and "off exit 2" in out and "auto exit 0" in out, out[-2000:]
    assert run.stderr.count("\n") == 1 and ("(900 images of 3×128×128 float32, twice while loading) needs 0.3 GiB, "
                                            "more than 50% of the") in run.stderr
    assert "streamed from disk (decoded they would need 0.3 GiB" in out
    assert (tmp_path / "auto" / "results.csv").is_file()
