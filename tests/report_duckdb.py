"""Recomputes `memsweep report`'s per-point means with DuckDB, from nothing
but a glob over instances/*.parquet grouped by the varied columns, and
checks them against DIR/report/summary.csv. Usage:
    python3 tests/report_duckdb.py RESULTS_DIR COLUMN[,COLUMN...]
"""
import csv
import math
import sys

import duckdb

root, columns = sys.argv[1], sys.argv[2].split(",")
# summary.csv column -> the DuckDB aggregate that must equal it.
MEANS = {
    "instances": "count(*)",
    "recalled_mean": "avg(recalled)",
    "recalled_frac_mean": "avg(recalled::DOUBLE / n_patterns)",
    "learned_all_p": "avg(learned_all::INT)",
    "converged_era_mean": "avg(converged_era)",
    "controllability_initial_mean": "avg(controllability_initial)",
    "controllability_final_mean": "avg(controllability_final)",
    "cycle_space_dim_mean": "avg(cycle_space_dim)",
}
keys = ", ".join(f"{c}::VARCHAR" for c in columns)
aggregates = ", ".join(MEANS.values())
rows = duckdb.connect().execute(
    f"SELECT {keys}, {aggregates} FROM '{root}/instances/*.parquet' GROUP BY ALL"
).fetchall()
by_key = {tuple(r[: len(columns)]): r[len(columns):] for r in rows}

with open(f"{root}/report/summary.csv", newline="") as f:
    summary = list(csv.DictReader(f))
assert len(summary) == len(by_key), (len(summary), len(by_key))


def same_key(csv_value, duck_value):
    try:
        return math.isclose(float(csv_value), float(duck_value), rel_tol=1e-12)
    except ValueError:
        return csv_value == duck_value


checked = 0
for row in summary:
    matches = [
        v for k, v in by_key.items() if all(same_key(row[c], d) for c, d in zip(columns, k))
    ]
    assert len(matches) == 1, (row, list(by_key))
    for (name, _), duck in zip(MEANS.items(), matches[0]):
        mine = row[name]
        if duck is None:
            assert mine == "", (name, mine, duck)
        else:
            assert math.isclose(float(mine), float(duck), rel_tol=1e-9, abs_tol=1e-12), (
                name,
                row["label"],
                mine,
                duck,
            )
        checked += 1
print(f"duckdb agrees with report: {len(summary)} grid points, {checked} means")
