"""``regularkit demo mc-dropout``: weight scaling vs Monte Carlo averaging at test time.

The lecture (deck 004, "Dropout: test time") wants ``y = E_z[f(x, z)]``, the
output averaged over dropout masks z, and approximates it by one pass with the
weights scaled (inverted dropout: a plain eval pass).  This demo trains a
dropout MLP on the digits data, then measures on the test set how the Monte
Carlo estimate over k masks (probabilities averaged) compares with weight
scaling as k grows: test error of each, and the mean absolute difference of
their predicted probabilities.  Exact for a linear net; for a ReLU net the two
differ (Jensen), and this shows by how much.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from regularkit._util.checks import check_int
from regularkit._util.fmt import pct
from regularkit._util.io import atomic_savefig, atomic_write_json, figure
from regularkit.models import MLP
from regularkit.noise import compare_mc_to_weight_scaling, mc_predict, weight_scaling_predict
from regularkit.study.config import StudyConfig
from regularkit.study.pipeline import prepare_splits
from regularkit.train import fit

__all__ = ["KS", "mc_dropout_table", "mc_dropout_demo"]

KS = (1, 2, 5, 10, 20, 50, 100)


def mc_dropout_table(*, seed: int = 0, p: float = 0.5, epochs: int = 60, ks=KS) -> dict[str, Any]:
    seed = check_int("seed", seed, minimum=0)
    splits = prepare_splits(StudyConfig())  # the default study's data: 300 digits, the same split
    torch.manual_seed(seed)
    model = MLP(splits.input_shape, splits.num_classes, widths=(256, 256), dropout=p)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    fit(model, splits.train, optimizer=opt, epochs=epochs, batch_size=32, seed=seed)
    x, y = splits.test
    probs = lambda z: z.softmax(-1)  # noqa: E731 - average probabilities, as an ensemble would
    ws = weight_scaling_predict(model, x, transform=probs)
    rows = []
    for k in ks:
        g = torch.Generator().manual_seed(seed)
        mc = mc_predict(model, x, k, generator=g, transform=probs)
        rows.append({"k": k, "mc_test_error": float((mc.argmax(1) != y).float().mean()),
                     "mean_abs_prob_diff": float((mc - ws).abs().mean()),
                     "argmax_agreement": float((mc.argmax(1) == ws.argmax(1)).float().mean())})
    report = compare_mc_to_weight_scaling(model, x, k=max(ks), generator=torch.Generator().manual_seed(seed),
                                          transform=probs)
    return {"weight_scaling_test_error": float((ws.argmax(1) != y).float().mean()), "rows": rows,
            "report": report, "dropout": p, "epochs": epochs, "seed": seed, "test_size": int(x.shape[0])}


def mc_dropout_demo(out_dir, seed: int = 0, **kw) -> list[Path]:
    out = Path(out_dir)
    result = mc_dropout_table(seed=seed, **kw)
    table = Table(title=f"Dropout {result['dropout']} at test time: weight scaling vs Monte Carlo (digits test set)")
    for col in ("k masks", "MC test err %", "weight scaling test err %", "mean |p_MC - p_WS|", "same argmax %"):
        table.add_column(col, justify="right")
    for r in result["rows"]:
        table.add_row(str(r["k"]), pct(r["mc_test_error"]), pct(result["weight_scaling_test_error"]),
                      f"{r['mean_abs_prob_diff']:.4f}", pct(r["argmax_agreement"], 1))
    Console().print(table)
    fig = figure(6.5, 4, layout=None)
    ax = fig.add_subplot()
    ks = [r["k"] for r in result["rows"]]
    ax.plot(ks, [100 * r["mc_test_error"] for r in result["rows"]], "o-", label="Monte Carlo over k masks")
    ax.axhline(100 * result["weight_scaling_test_error"], color="gray", ls="--", label="weight scaling (one pass)")
    ax.set_xscale("log")
    ax.set_xlabel("k (dropout masks averaged)")
    ax.set_ylabel("test error %")
    ax.set_title("E_z[f(x, z)]: Monte Carlo vs weight scaling")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = atomic_savefig(fig, out / "mc_dropout.png", dpi=110)
    js = atomic_write_json(out / "mc_dropout.json", result)
    return [png, js]
