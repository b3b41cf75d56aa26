"""`regularkit demo mc-dropout`: Monte Carlo vs weight scaling, reproducible, files written."""
import json

from regularkit.demos.mc_dropout import mc_dropout_demo, mc_dropout_table


def test_table_is_seeded_and_consistent():
    a = mc_dropout_table(seed=1, epochs=3, ks=(1, 4, 16))
    b = mc_dropout_table(seed=1, epochs=3, ks=(1, 4, 16))
    assert a == b
    assert [r["k"] for r in a["rows"]] == [1, 4, 16]
    for r in a["rows"]:
        assert 0 <= r["mc_test_error"] <= 1 and 0 <= r["argmax_agreement"] <= 1
    # more masks: the Monte Carlo estimate moves towards its limit, not away from weight scaling
    assert a["rows"][-1]["mean_abs_prob_diff"] <= a["rows"][0]["mean_abs_prob_diff"] + 1e-9
    assert a["report"]["k"] == 16


def test_demo_writes_png_and_json(tmp_path, capsys):
    paths = mc_dropout_demo(tmp_path, seed=0, epochs=2, ks=(1, 2))
    assert [p.name for p in paths] == ["mc_dropout.png", "mc_dropout.json"]
    data = json.loads(paths[1].read_text())
    assert [r["k"] for r in data["rows"]] == [1, 2] and 0 <= data["weight_scaling_test_error"] <= 1
    assert "weight scaling" in capsys.readouterr().out
