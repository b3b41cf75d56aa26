"""Write scikit-learn's diabetes data (442 patients, 10 features, a disease-progression score) to a CSV table.

    python bench/diabetes_csv.py diabetes.csv
    regularkit study --data diabetes.csv --target target

The features are scikit-learn's (already centred and scaled); ``target`` is the measure of
disease progression one year after baseline (25 to 346), a floating-point column, so the study's
``--task auto`` reads it as regression.
"""
from __future__ import annotations

import csv
import sys

from sklearn.datasets import load_diabetes


def main(path: str = "diabetes.csv") -> None:
    data = load_diabetes()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*data.feature_names, "target"])
        for row, y in zip(data.data, data.target):
            writer.writerow([*(repr(float(v)) for v in row), repr(float(y))])
    print(f"wrote {path}: {len(data.target)} rows, {len(data.feature_names)} features and a target column")


if __name__ == "__main__":
    main(*sys.argv[1:2])
