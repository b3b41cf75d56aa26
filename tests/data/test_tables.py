"""Tables: CSV and Parquet files, preprocessing fitted on the training part only, checked against NumPy."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from regularkit.data.datasets import load_dataset
from regularkit.data.tables import load_table
from regularkit.errors import RegularkitError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = [  # size (numeric), colour (categorical), const (numeric, constant), kind (string target)
    ("1.5", "red", "7", "cat"), ("2", "blue", "7", "dog"), ("3.25", "red", "7", "cat"),
    ("4", "green", "7", "dog"), ("-1", "red", "7", "cat"), ("6e1", "blue", "7", "dog"),
    ("0.5", "blue", "7", "cat"), ("8", "red", "7", "dog"), ("9", "green", "7", "cat"), ("10", "red", "7", "dog"),
]


def write_csv(path, rows=ROWS, header=("size", "colour", "const", "kind")):
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def reference(rows, train_rows, test_rows):
    """Standardization and one-hot, restated in NumPy with training statistics only (population std)."""
    def part(numbers):
        return [rows[r - 2] for r in numbers]  # spreadsheet row r is data row r - 2
    train, test = part(train_rows), part(test_rows)
    size = np.array([float(r[0]) for r in train])
    mean, std = size.mean(), size.std()
    cats = sorted({r[1] for r in train})

    def features(part_rows):
        out = []
        for r in part_rows:
            out.append([(float(r[0]) - mean) / std, 0.0] + [float(r[1] == c) for c in cats])  # const: (7-7)/1
        return np.array(out)
    return features(train), features(test), mean, std, cats


def test_csv_standardized_and_one_hot_with_training_statistics_only(tmp_path):
    ds = load_table(write_csv(tmp_path / "pets.csv"), target="kind", test_fraction=0.3, seed=1)
    src = ds.sources
    assert ds.name == "pets" and ds.classes == ("cat", "dog") and ds.layout == "vectors" and ds.kind == "vectors"
    assert src["split"] == "seeded" and len(src["train_rows"]) == 7 and len(src["test_rows"]) == 3
    assert sorted(src["train_rows"] + src["test_rows"]) == list(range(2, 12))
    x_train, x_test, mean, std, cats = reference(ROWS, src["train_rows"], src["test_rows"])
    np.testing.assert_allclose(ds.x_train, x_train, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ds.x_test, x_test, rtol=1e-6, atol=1e-6)
    pre = src["preprocessing"]
    assert pre["columns"] == ["size", "colour", "const"]
    assert pre["features"] == ["size", "const"] + [f"colour={c}" for c in cats]
    assert pre["numeric"]["size"]["mean"] == pytest.approx(mean) and pre["numeric"]["size"]["std"] == pytest.approx(std)
    assert pre["numeric"]["const"] == {"mean": 7.0, "std": 0.0, "scale": 1.0}  # constant column: divided by 1
    assert pre["categorical"] == {"colour": cats}
    labels = [ROWS[r - 2][3] for r in src["train_rows"]]
    assert [ds.classes[y] for y in ds.y_train] == labels
    assert ds.x_train.dtype == np.float32 and ds.flips is None and ds.fill is None


def test_split_is_seeded_and_stratified(tmp_path):
    path = write_csv(tmp_path / "t.csv")
    a, b = load_table(path, target="kind", seed=4), load_table(path, target="kind", seed=4)
    assert a.sources["test_rows"] == b.sources["test_rows"] and np.array_equal(a.x_test, b.x_test)
    others = [load_table(path, target="kind", seed=s).sources["test_rows"] for s in range(5, 9)]
    assert any(o != a.sources["test_rows"] for o in others)
    assert np.bincount(a.y_test).tolist() == [1, 1]


def test_integer_target_sorted_numerically(tmp_path):
    rows = [(str(i), "a", "0", t) for i, t in enumerate(["10", "2", "1", "10", "2", "1"])]
    ds = load_table(write_csv(tmp_path / "t.csv", rows), target="kind", test_fraction=0.5)
    assert ds.classes == ("1", "2", "10")
    assert [ds.classes[y] for y in ds.y_train] == [rows[r - 2][3] for r in ds.sources["train_rows"]]


def test_separate_test_table_unseen_category_is_a_zero_row(tmp_path):
    train = write_csv(tmp_path / "train.csv")
    test = write_csv(tmp_path / "test.csv", [("2", "purple", "7", "dog"), ("4", "red", "9", "cat")])
    ds = load_table(train, target="kind", test_path=test)
    src = ds.sources
    assert src["split"] == "files" and src["test_rows"] == [2, 3] and src["train_rows"] == list(range(2, 12))
    size = np.array([float(r[0]) for r in ROWS])
    colours = ["blue", "green", "red"]
    assert src["preprocessing"]["unknown_in_test"] == {"colour": 1}
    expected = np.array([[(2 - size.mean()) / size.std(), 0.0, 0, 0, 0],
                         [(4 - size.mean()) / size.std(), 2.0, 0, 0, 1]])  # const: (9 - 7) / 1
    np.testing.assert_allclose(ds.x_test, expected, rtol=1e-6, atol=1e-6)
    assert src["preprocessing"]["categorical"]["colour"] == colours and ds.y_test.tolist() == [1, 0]


def test_parquet_reads_like_the_same_csv(tmp_path):
    write_csv(tmp_path / "t.csv")
    table = pa.table({"size": [float(r[0]) for r in ROWS], "colour": [r[1] for r in ROWS],
                      "const": pa.array([7] * 10, pa.int64()), "kind": [r[3] for r in ROWS]})
    pq.write_table(table, tmp_path / "t.parquet")
    from_csv = load_table(tmp_path / "t.csv", target="kind", seed=2)
    from_pq = load_dataset(tmp_path / "t.parquet", target="kind", split_seed=2)
    assert np.array_equal(from_csv.x_train, from_pq.x_train) and np.array_equal(from_csv.y_test, from_pq.y_test)
    assert from_pq.sources["preprocessing"]["features"] == from_csv.sources["preprocessing"]["features"]
    pq.write_table(table, tmp_path / "t.pq")
    assert load_dataset(tmp_path / "t.pq", target="kind", split_seed=2).classes == ("cat", "dog")


def test_parquet_nulls_and_unsupported_types(tmp_path):
    base = {"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]}
    pq.write_table(pa.table({**base, "x": [1.0, None, 3.0, 4.0]}), tmp_path / "null.parquet")
    with pytest.raises(RegularkitError, match=rf"^{tmp_path}/null\.parquet: row 3: column 'x' has no value"):
        load_table(tmp_path / "null.parquet", target="y", test_fraction=0.5)
    pq.write_table(pa.table({**base, "when": pa.array([0, 1, 2, 3], pa.timestamp("s"))}), tmp_path / "ts.parquet")
    with pytest.raises(RegularkitError, match=r"column 'when' has Arrow type timestamp\[m?s\]; only numbers, strings"):
        load_table(tmp_path / "ts.parquet", target="y", test_fraction=0.5)
    pq.write_table(pa.table({**base, "flag": [True, False, True, True]}), tmp_path / "b.parquet")
    ds = load_table(tmp_path / "b.parquet", target="y", test_fraction=0.5)
    assert ds.sources["preprocessing"]["categorical"]["flag"] in (["False", "True"], ["True"])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(RegularkitError, match=rf"^cannot read {tmp_path}/junk\.parquet as Parquet: "):
        load_table(tmp_path / "junk.parquet", target="y")


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": ["a", "b"]}), tmp_path / "t.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(RegularkitError, match=r"t\.parquet: reading Parquet needs pyarrow: pip install pyarrow$"):
        load_table(tmp_path / "t.parquet", target="y")


@pytest.mark.parametrize("cell", ["", "NA", "NaN", "nan", " ", "NAN"])
def test_missing_feature_names_column_row_and_file(tmp_path, cell):
    rows = list(ROWS)
    rows[3] = ("4", cell, "7", "dog")
    path = write_csv(tmp_path / "m.csv", rows)
    with pytest.raises(RegularkitError, match=rf"^{path}: row 5: column 'colour' has no value \(missing values "
                                              r"are not imputed\)$"):
        load_table(path, target="kind")


@pytest.mark.parametrize("rows, header, message", [
    ([("1", "a", "7", "")] + ROWS[1:], None, r"row 2: the target column 'kind' has no value"),
    (ROWS, ("size", "colour", "const", "label"), r"no column 'kind'; the columns are size, colour, const, label"),
    ([(r[0], r[1], r[2], "cat") for r in ROWS], None, r"the target column 'kind' holds a single class \('cat'\)"),
    (ROWS[:9] + [("1", "a", "7", "bird")], None, r"cannot stratify: class 'bird' has only 1 sample"),
    ([(r[0], r[1], r[2], str(i % 2 + 0.5)) for i, r in enumerate(ROWS)], None,
     r"row 2: the target column 'kind' holds the number '0\.5'; class labels must be integers or strings"),
    ([("1", "a", "7", "cat"), ("1", "a", "7")] + ROWS, None, r"row 3 has 3 fields but the header has 4"),
    (ROWS, ("1", "2", "3", "4"), r"the first row holds only numbers \(1, 2, 3, \.\.\.\); a table needs a header"),
    (ROWS, ("size", "size", "const", "kind"), r"column 'size' appears twice in the header"),
    ([("inf",) + r[1:] for r in ROWS], None, r"row 2: column 'size' holds 'inf', not a finite number"),
    ([], None, r"has a header but no data rows"),
])
def test_table_errors(tmp_path, rows, header, message):
    path = write_csv(tmp_path / "e.csv", rows, **({"header": header} if header else {}))
    with pytest.raises(RegularkitError, match=message) as info:
        load_table(path, target="kind")
    assert str(info.value).startswith(str(path)) or "stratify" in str(info.value)
    assert "\n" not in str(info.value)


def test_test_table_errors(tmp_path):
    train = write_csv(tmp_path / "train.csv")
    bad_target = write_csv(tmp_path / "t1.csv", [("1", "red", "7", "horse")])
    with pytest.raises(RegularkitError, match=r"t1\.csv: row 2: target value 'horse' was never seen in "
                                              r"training \(classes: cat, dog\)$"):
        load_table(train, target="kind", test_path=bad_target)
    text = write_csv(tmp_path / "t2.csv", [("big", "red", "7", "cat")])
    with pytest.raises(RegularkitError, match=r"t2\.csv: row 2: column 'size' is numeric in the training table "
                                              r"but holds 'big'$"):
        load_table(train, target="kind", test_path=text)
    cols = write_csv(tmp_path / "t3.csv", [("1", "7", "cat")], header=("size", "const", "kind"))
    with pytest.raises(RegularkitError, match=r"t3\.csv: the test table's columns differ from .*train\.csv's: "
                                              r"missing colour; extra none$"):
        load_table(train, target="kind", test_path=cols)


def test_file_level_errors(tmp_path):
    with pytest.raises(RegularkitError, match=rf"^table file not found: {tmp_path}/none\.csv$"):
        load_table(tmp_path / "none.csv", target="y")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RegularkitError, match=r"empty\.csv is empty; a table needs a header row$"):
        load_table(tmp_path / "empty.csv", target="y")
    (tmp_path / "latin.csv").write_bytes(b"a,y\n\xe9,1\n")
    with pytest.raises(RegularkitError, match=r"latin\.csv: not UTF-8 text \(invalid continuation byte at byte"):
        load_table(tmp_path / "latin.csv", target="y")
    with pytest.raises(RegularkitError, match=r"t\.tsv: not a table file; a table is one of \.csv, \.parquet, \.pq$"):
        load_table(tmp_path / "t.tsv", target="y")
    with pytest.raises(RegularkitError, match=r"^target must be a column name \(a string\), got 3$"):
        load_table(tmp_path / "t.csv", target=3)


def test_bom_blank_lines_and_quoted_fields(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes('\ufeffname,n,y\n"a, b",1,u\n\nc,2,v\n"a, b",3,u\nd,4,v\n'.encode("utf-8"))
    ds = load_table(path, target="y", test_fraction=0.5)
    assert ds.sources["preprocessing"]["columns"] == ["name", "n"]  # the byte-order mark is not in the name
    assert sorted(ds.sources["train_rows"] + ds.sources["test_rows"]) == [2, 4, 5, 6]  # row 3 is blank
    assert "name=a, b" in ds.sources["preprocessing"]["features"]


def test_load_dataset_dispatch_for_tables(tmp_path):
    path = write_csv(tmp_path / "t.csv")
    with pytest.raises(RegularkitError, match=r"t\.csv: a table needs target=, the name of the column that "
                                              r"holds the class$"):
        load_dataset(path)
    with pytest.raises(RegularkitError, match=r"t\.csv: image_size does not apply to a table; it takes target, "
                                              r"test_path, test_fraction, split_seed$"):
        load_dataset(path, target="kind", image_size=4)
    ds = load_dataset(str(path), target="kind", test_fraction=0.3, limit_train=4, seed=0)
    assert len(ds.y_train) == 4 == len(ds.sources["train_rows"]) and len(ds.y_test) == 3
    assert [ds.classes[y] for y in ds.y_train] == [ROWS[r - 2][3] for r in ds.sources["train_rows"]]
    with pytest.raises(RegularkitError, match=r"target does not apply to an \.npz file"):
        load_dataset(tmp_path / "x.npz", target="kind")


def test_one_typo_in_a_numeric_column_is_said_in_one_line_naming_the_cell(tmp_path):
    """A typo used to make the whole column one-hot without a word (issue 23); it is read as categories, and said."""
    from regularkit.data.schema import DataWarning
    rows = list(ROWS)
    rows[3] = ("4o", *rows[3][1:])  # row 5 of the file (the header is row 1)
    path = write_csv(tmp_path / "typo.csv", rows)
    with pytest.warns(DataWarning) as caught:
        ds = load_table(path, target="kind", test_fraction=0.2)
    assert [str(w.message) for w in caught] == [
        f"{path}: column 'size' is read as categorical (one-hot, one feature per distinct value) because 1 of 10 "
        "values are not numbers, the first in row 5: '4o'; fix the cell if the column is numeric"]
    record = ds.sources["preprocessing"]
    assert "size" in record["categorical"] and "size" not in record["numeric"]  # what the line says happened


def test_columns_of_words_or_of_numbers_are_read_without_a_warning(tmp_path):
    import warnings
    half = [(("x" if i % 2 else str(i)), *r[1:]) for i, r in enumerate(ROWS)]  # as many words as numbers: categories
    for name, rows in (("clean.csv", ROWS), ("half.csv", half)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_table(write_csv(tmp_path / name, rows), target="kind", test_fraction=0.2)
