"""study/results/summary.py: a recipe's row in results.csv."""
import csv
import io
import json

from regularkit.study.results.report import write_csv
from regularkit.study.results.summary import RecipeSummary


def test_a_joint_strength_is_written_as_a_json_object_and_a_single_one_as_a_number(tmp_path):
    joint = {"reg.label_smoothing": 0.0858, "model.dropout": 0.14, "reg.input_noise": 0.0154}
    rows = [RecipeSummary("combined", "", [0], stats={"test_error": (0.129, 0.0)},
                          strength={"field": "reg.label_smoothing", "value": joint, "tuned": True}),
            RecipeSummary("l2", "", [0], stats={"test_error": (0.137, 0.0)},
                          strength={"field": "reg.l2", "value": 1.7e-05, "tuned": True})]
    path = write_csv(rows, tmp_path / "results.csv")
    read = list(csv.DictReader(io.StringIO(path.read_text())))
    assert json.loads(read[0]["strength_value"]) == joint  # not Python's repr, which JSON readers refuse
    assert float(read[1]["strength_value"]) == 1.7e-05
