"""Before any training: the user's model factory, which recipes apply to it, and bad inputs refused in one line
with the study folder left as it was."""
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from regularkit._util import memory
from regularkit.cli import main
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study import plan as plan_module
from regularkit.study.pipeline import run_study
from regularkit.study.plan import WORKERS_PER_CORE, check_workers, make_plan, numerics

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


# --- the numerical environment in the run key, and the limits (issue 23, items 3 and 4) ---------------------------


@pytest.fixture
def threads():
    """Put torch's thread count back after a test that sets it (as the CLI does)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_numerics_name_the_plans_threads_the_torch_version_device_and_precision(threads):
    cpu = torch.device("cpu")
    torch.set_num_threads(3)
    assert numerics(StudyConfig(threads=1, workers=1), cpu) == {"device": "cpu", "precision": "fp32",
                                                                "torch": torch.__version__, "threads": 1}
    assert numerics(StudyConfig(workers=2, threads=2), cpu)["threads"] == 2    # what each spawned worker sets
    assert numerics(StudyConfig(precision="bf16", threads=1), cpu)["precision"] == "bf16"
    assert "threads" not in numerics(StudyConfig(threads=1), torch.device("meta"))  # off the CPU: not the threads


def test_other_threads_give_other_run_keys_and_the_same_command_the_same_keys(threads):
    cfg = StudyConfig(recipes=("baseline", "l2"), **FAST)
    torch.set_num_threads(2)                      # the process's count is not what the keys name: the plan's is
    default = make_plan(cfg)
    assert make_plan(cfg).keys == default.keys    # the default rerun resumes
    one, two = make_plan(replace(cfg, threads=1)), make_plan(replace(cfg, threads=2))
    assert one.keys == default.keys               # the rule gives this MLP one thread: the same runs as --threads 1
    assert two.keys.isdisjoint(one.keys) and len(two.keys) == len(one.keys) == 2
    assert default.identity["numerics"]["threads"] == one.cfg.threads == 1 and two.identity["numerics"]["threads"] == 2


@pytest.mark.slow
def test_a_rerun_with_other_threads_trains_new_runs_and_never_reuses_the_old_ones(tmp_path, capsys, threads):
    argv = ["study", "--recipes", "baseline", "--epochs", "1", "--seeds", "1", "--train-size", "60", "--no-progress",
            "--out", str(tmp_path / "o")]
    assert main([*argv, "--threads", "1"]) == 0
    assert "0 runs finished, 1 to do" in capsys.readouterr().out
    assert main([*argv, "--threads", "1"]) == 0
    assert "1 runs finished, 0 to do" in capsys.readouterr().out  # same threads: resumed, not retrained
    assert main([*argv, "--threads", "2"]) == 0
    assert "0 runs finished, 1 to do" in capsys.readouterr().out  # other threads: a new run


def test_workers_are_capped_per_core_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    check_workers(2 * WORKERS_PER_CORE)
    with pytest.raises(RegularkitError, match=rf"^workers 1000 is more than {WORKERS_PER_CORE} per core "
                                              rf"\({2 * WORKERS_PER_CORE} on this machine's 2 cores\)"):
        make_plan(StudyConfig(workers=1000, **FAST))


def test_every_workers_copy_of_the_data_must_fit(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 10**6)  # 1 MB: the digits (225 kB) fit once, not 8 times
    make_plan(StudyConfig(widths=(4,), **FAST))
    with pytest.raises(RegularkitError, match=r"^the data of 8 workers \(0\.00021 GiB each\) needs 0\.0017 GiB, more "
                                              r"than 50% of the 0\.00093 GiB available; use fewer --workers$"):
        make_plan(StudyConfig(workers=8, widths=(4,), **FAST))
    assert plan_module.MEMORY_SHARE == memory.MEMORY_SHARE


# --- threads by work, workers by the cores (issue 25, item 2) ------------------------------------------------------
DIGITS_MLP_STEP = 3 * 2 * 32 * (64 * 256 + 256 * 256 + 256 * 10)   # forward + backward of 64-256-256-10, batch 32


@pytest.fixture
def quiet(monkeypatch):
    """A machine with nothing else running (the plan looks at the busy cores when it could use more workers)."""
    monkeypatch.setattr(plan_module, "busy_cores", lambda: 0.0)


def test_the_plan_gives_a_small_mlp_one_thread_and_a_worker_per_core_the_steps_pay_for(monkeypatch, quiet):
    monkeypatch.setattr(plan_module, "usable_cores", lambda: 4)
    plan = make_plan(StudyConfig())                                   # the default study: 6 recipes x 3 seeds
    batches = -(-len(plan.data.splits.y_train) // 32)
    steps = 18 * 100 * batches
    assert (batches, steps) == (10, 18_000)                           # 300 training digits
    assert (plan.cfg.threads, plan.cfg.workers) == (1, 3) and plan.identity["numerics"]["threads"] == 1
    assert plan.work == ("1 thread per worker, 3 workers (18,000 steps in all, one worker per 5,000): a step of "
                         f"{DIGITS_MLP_STEP / 1e6:.1f} MFLOP gains nothing from a second thread (one per 1,000 MFLOP)")
    short = make_plan(StudyConfig(**FAST))                            # 2 epochs: not worth a second process
    assert (short.cfg.threads, short.cfg.workers) == (1, 1) and "1 worker (" in short.work


def test_workers_take_only_the_cores_other_processes_leave_and_the_keys_do_not_follow_the_load(monkeypatch, quiet):
    monkeypatch.setattr(plan_module, "usable_cores", lambda: 4)
    idle = make_plan(StudyConfig())
    monkeypatch.setattr(plan_module, "busy_cores", lambda: 2.6)      # round(4 - 2.6) = 1 core free
    loaded = make_plan(StudyConfig())
    assert (idle.cfg.workers, loaded.cfg.workers) == (3, 1) and loaded.keys == idle.keys
    assert loaded.work.startswith("1 thread per worker, 1 worker (4 cores, 2.6 busy with other processes): ")
    monkeypatch.setattr(plan_module, "busy_cores", lambda: 1 / 0)    # a short study never looks
    assert make_plan(StudyConfig(**FAST)).cfg.workers == 1


def test_a_step_with_work_for_more_threads_gets_them_and_its_keys_name_them(monkeypatch):
    from regularkit._util import threads as T
    monkeypatch.setattr(T, "FLOPS_PER_THREAD", 1_000_000)            # as if a thread paid from 1 MFLOP
    monkeypatch.setattr(plan_module, "usable_cores", lambda: 8)
    plan = make_plan(StudyConfig(**FAST))
    assert (plan.cfg.threads, plan.cfg.workers) == (8, 1) and plan.identity["numerics"]["threads"] == 8
    assert plan.work.endswith(f"8 cores shared out (a step of {DIGITS_MLP_STEP / 1e6:.1f} MFLOP has work for 16)")
    assert plan.keys.isdisjoint(make_plan(StudyConfig(threads=1, **FAST)).keys)


def test_threads_and_workers_asked_for_always_win(monkeypatch, quiet):
    monkeypatch.setattr(plan_module, "usable_cores", lambda: 2)
    both = make_plan(StudyConfig(threads=2, workers=1, **FAST))
    assert (both.cfg.threads, both.cfg.workers) == (2, 1) and both.identity["numerics"]["threads"] == 2
    assert both.work == "2 threads per worker (asked for), 1 worker (asked for)"
    workers = make_plan(StudyConfig(workers=3, **FAST))               # 3 workers though 36 steps would not pay
    assert (workers.cfg.threads, workers.cfg.workers) == (1, 3) and "3 workers (asked for)" in workers.work
    threads = make_plan(StudyConfig(threads=2))                       # the workers follow the asked-for threads
    assert (threads.cfg.threads, threads.cfg.workers) == (2, 1) and threads.work.startswith(
        "2 threads per worker (asked for), 1 worker (2 cores, 2 threads each)")


def test_one_worker_where_a_fresh_process_could_not_import_the_model_nor_hold_the_data_nor_share_the_gpu(monkeypatch,
                                                                                                          quiet):
    monkeypatch.setattr(plan_module, "usable_cores", lambda: 4)

    def build(input_shape, num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))

    plan = make_plan(StudyConfig(), model=build)      # 5 recipes (no dropout) x 3 seeds x 100 epochs: 3 workers else
    assert plan.cfg.workers == 1 and "1 worker (a fresh process cannot import the model factory)" in plan.work
    assert f"a step of {3 * 2 * 32 * 64 * 10 / 1e6:.1f} MFLOP" in plan.work  # the factory's own model counted
    monkeypatch.setattr(plan_module, "available_memory", lambda: 6 * 10**5)  # the digits (225 kB) fit once in 300 kB
    small = make_plan(StudyConfig(widths=(4,)))
    assert small.cfg.workers == 1 and "1 worker (memory holds 1 copy of the data)" in small.work
    cfg, why = plan_module.work(StudyConfig(), small.recipes, small.data, None, torch.device("cuda"))
    assert cfg.workers == 1 and "1 worker (one cuda device)" in why


@pytest.mark.parametrize("kwargs, message", [
    ({"threads": 0}, r"^threads must be >= 1, got 0$"),
    ({"workers": 0}, r"^workers must be >= 1, got 0$"),
    ({"threads": 1.5}, r"^threads must be an integer"),
    ({"workers": "2"}, r"^workers must be an integer"),
])
def test_bad_threads_and_workers_are_one_line_errors(kwargs, message):
    with pytest.raises(RegularkitError, match=message):
        StudyConfig(**kwargs)


@pytest.mark.parametrize("flag, value", [("--threads", "0"), ("--workers", "-1")])
def test_bad_threads_and_workers_on_the_command_line_exit_2_in_one_line(tmp_path, capsys, flag, value):
    assert main(["study", flag, value, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == f"regularkit: error: {flag[2:]} must be >= 1, got {value}\n"
    assert not (tmp_path / "o").exists()


def test_the_command_trains_with_the_plans_threads_and_says_why(tmp_path, capsys, threads):
    import json
    torch.set_num_threads(2)
    out = tmp_path / "o"
    argv = ["study", "--recipes", "baseline", "--epochs", "1", "--seeds", "1", "--train-size", "60", "--no-progress",
            "--out", str(out)]
    before = torch.get_num_threads()
    assert main(argv) == 0
    assert "threads: 1 thread per worker, 1 worker (" in capsys.readouterr().out
    record = json.loads((out / "runs" / "baseline" / "seed0.json").read_text())
    assert record["environment"]["torch_threads"] == 1           # trained with the plan's count
    assert torch.get_num_threads() == before                       # and the caller's count is given back
    assert main([*argv, "--threads", "1"]) == 0                      # the rule's count asked for: the same run
    assert "1 runs finished, 0 to do" in capsys.readouterr().out
    assert main([*argv, "--threads", "2", "--fresh"]) == 0           # asked for: wins over the rule
    assert "threads: 2 threads per worker (asked for)" in capsys.readouterr().out
    record = json.loads((out / "runs" / "baseline" / "seed0.json").read_text())
    assert torch.get_num_threads() == 2 and record["environment"]["torch_threads"] == 2
