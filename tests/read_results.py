"""Reads a memsweep results directory with DuckDB and pyarrow, as a user's
analysis would, and checks the tables are consistent. Usage:
    python3 tests/read_results.py RESULTS_DIR
"""
import sys

import duckdb
import pyarrow.parquet as pq

root = sys.argv[1]
con = duckdb.connect()
n, learned, recalled = con.execute(
    f"SELECT count(*), avg(learned_all::INT), avg(recalled / n_patterns) "
    f"FROM '{root}/instances/*.parquet'"
).fetchone()
reads = con.execute(f"SELECT count(*) FROM '{root}/eras/*.parquet'").fetchone()[0]
expected_reads = con.execute(
    f"SELECT sum(eras_run * n_patterns) FROM '{root}/instances/*.parquet'"
).fetchone()[0]
assert reads == expected_reads, (reads, expected_reads)
assert n > 0 and 0.0 <= learned <= 1.0 and 0.0 <= recalled <= 1.0

table = pq.read_table(f"{root}/instances")
assert table.num_rows == n
assert table.schema.field("hidden").type.value_type is not None
meta = pq.read_metadata(next(iter(__import__("glob").glob(f"{root}/instances/*.parquet")))).metadata
assert b"memsweep.sweep" in meta and b"memsweep.backend" in meta
print(f"duckdb/pyarrow read {n} instances, {reads} reads; Pr[learned_all] = {learned:.3f}")
