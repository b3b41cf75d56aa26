"""Before any training: the user's model factory, which recipes apply to it, and bad inputs refused in one line
with the study folder left as it was."""
import numpy as np
import pytest
from torch import nn

from regularkit.cli import main
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study.pipeline import run_study
from regularkit.study.plan import make_plan

FACTORIES = '''
import math
from torch import nn


def small_cnn(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * (h // 2) * (w // 2), 16), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(16, num_classes))


def small_mlp(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 32), nn.ReLU(),
                         nn.Linear(32, num_classes))


def wrong(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes + 1))
'''
FAST = dict(epochs=2, seeds=1, batch_size=32, train_size=100)


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(FACTORIES)
    return path


def test_a_factory_cnn_runs_the_default_recipes_that_apply(tmp_path, models):
    result = run_study(StudyConfig(model=f"{models}:small_cnn", out=str(tmp_path / "o"), **FAST), progress=False)
    assert [s.recipe for s in result.summaries] == ["baseline", "l2", "dropout", "early-stopping", "gaussian-noise",
                                                    "label-smoothing"]
    # the dropout recipe set the rate of the factory's own dropout layer
    assert result.records[2]["recipe_config"]["model"]["dropout"] == 0.3
    assert (tmp_path / "o" / "report.html").is_file()


def test_a_factory_mlp_without_dropout_leaves_the_default_dropout_recipe_out_with_the_reason(tmp_path, models, capsys):
    plan = make_plan(StudyConfig(model=f"{models}:small_mlp", out=str(tmp_path / "o"), **FAST))
    assert [r.name for r in plan.recipes] == ["baseline", "l2", "early-stopping", "gaussian-noise", "label-smoothing"]
    assert "your model has none: add nn.Dropout" in plan.skipped["dropout"]
    # named explicitly, it is refused, before any training and without writing anything
    with pytest.raises(RegularkitError, match=r"recipe 'dropout' cannot run here: .*; recipes that apply: baseline"):
        make_plan(StudyConfig(model=f"{models}:small_mlp", recipes=("baseline", "dropout"), **FAST))


def test_a_python_callable_is_a_factory_too(tmp_path):
    def build(input_shape, num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))

    result = run_study(StudyConfig(recipes=("baseline", "l2"), out=str(tmp_path / "o"), **FAST), model=build,
                       progress=False)
    assert result.plan.cfg.model.endswith("build") and len(result.records) == 2
    with pytest.raises(RegularkitError, match=r"workers=2 start fresh processes, which must import the model factory"):
        make_plan(StudyConfig(workers=2, **FAST), model=build)


def write_images(root, sizes):
    from PIL import Image
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i, size in enumerate(sizes):
            Image.fromarray(np.full(size, 60 * (c + 1), np.uint8)).save(root / f"c{c}" / f"{i}.png")


def bad_inputs(tmp_path, models):
    """name -> (command line, message): every new bad input of the issue."""
    write_images(tmp_path / "ragged", [(8, 8), (9, 8), (8, 8), (8, 8), (8, 8)])
    write_images(tmp_path / "broken", [(8, 8)] * 5)
    (tmp_path / "broken" / "c0" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "t.csv").write_text("a,b,y\n1,2,0\n2,3,1\n3,4,0\n4,5,1\n5,6,0\n6,7,1\n7,8,0\n8,9,1\n9,1,0\n1,1,1\n")
    (tmp_path / "f.csv").write_text("a,y\n" + "".join(f"{i},{i / 3:.3f}\n" for i in range(12)))
    return {
        "missing factory": (["--model", f"{models}:nope"], r"has no function 'nope'"),
        "missing factory file": (["--model", "no_such_file.py:build"], r"model factory file not found"),
        "wrong shape": (["--model", f"{models}:wrong"], r"to \(2, 11\); expected logits of shape \(2, 10\)"),
        "unreadable image": (["--data", str(tmp_path / "broken")], r"bad.png"),
        "ragged images": (["--data", str(tmp_path / "ragged")], r"image_size"),
        "missing target column": (["--data", str(tmp_path / "t.csv"), "--target", "label"], r"'label'"),
        "non-numeric target": (["--data", str(tmp_path / "f.csv"), "--target", "y", "--task", "classification"],
                               r"'y'"),  # --task auto reads this fractional target as regression
        "no target": (["--data", str(tmp_path / "t.csv")], r"target"),
        "image size on digits": (["--image-size", "8,8"], r"image_size does not apply"),
    }


@pytest.mark.parametrize("case", ["missing factory", "missing factory file", "wrong shape", "unreadable image",
                                  "ragged images", "missing target column", "non-numeric target", "no target",
                                  "image size on digits"])
def test_bad_inputs_are_one_line_exit_2_and_the_folder_is_unchanged(tmp_path, models, capsys, case):
    argv, match = bad_inputs(tmp_path, models)[case]
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = main(["study", *argv, "--out", str(out), "--epochs", "1", "--seeds", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("regularkit: error: ") and err.count("\n") == 1, err
    import re
    assert re.search(match, err), err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
