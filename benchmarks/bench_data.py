"""`data`: a `%%ray_data --filter` cell against the same hand-written `map_batches`.

The rows are synthetic NYC taxi trips (`ray_magic.taxi.generate_trips`), written
once to 8 Parquet files under `benchmarks/.cache/`, read with pyarrow into a Ray
Dataset of 8 Arrow blocks in the object store (`ray.data.from_arrow`; here
`read_parquet(...).materialize()` takes 5-10 s and makes one block), and into one
pandas DataFrame for the single-process reference. Each round counts the rows
kept by the tutorial's filter (distance > 2 and passengers > 2), in two cells as a
user would: `%%ray_data trips = ds --filter` then `trips.count()`, against
`trips_plain = ds.map_batches(transform_batch, batch_format="pandas")` then
`trips_plain.count()`; and with pandas in the notebook's own process. The figure
is the median of the per-round ratios magic / map_batches.
"""
from __future__ import annotations

import os

from harness import CACHE, Figure, Notebook, interleaved, log, paired_ratio, spread

FILES = 8

_LOAD = '''
import glob
import pandas as pd
import pyarrow.parquet as pq
taxi_ds = ray.data.from_arrow([pq.read_table(f) for f in sorted(glob.glob({path!r} + "/*.parquet"))])
taxi_df = pd.read_parquet({path!r})

def transform_batch(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["Trip_Distance"] > 2) & (df["Passenger_Count"] > 2)]
'''

_MAGIC = '''%%ray_data trips = taxi_ds --filter
(df["Trip_Distance"] > 2) & (df["Passenger_Count"] > 2)
'''

_PLAIN = 'trips_plain = taxi_ds.map_batches(transform_batch, batch_format="pandas")'
_COUNT_PLAIN = "kept_plain = trips_plain.count()"
_COUNT_MAGIC = "kept_magic = trips.count()"
_PANDAS = 'kept_pandas = len(taxi_df[(taxi_df["Trip_Distance"] > 2) & (taxi_df["Passenger_Count"] > 2)])'


def taxi_parquet(rows: int) -> str:
    """A directory of FILES Parquet files with `rows` trips, generated once and cached."""
    from ray_magic.taxi import GENERATOR_VERSION, generate_trips

    path = os.path.join(CACHE, f"taxi-{rows}-v{GENERATOR_VERSION}")
    done = os.path.join(path, "_complete")
    if os.path.exists(done):
        return path
    log(f"data: generating {rows:,} taxi rows into {path}")
    os.makedirs(path, exist_ok=True)
    trips = generate_trips(rows)
    step = -(-rows // FILES)
    for i in range(FILES):
        trips.iloc[i * step:(i + 1) * step].to_parquet(os.path.join(path, f"part-{i}.parquet"), index=False)
    open(done, "w").close()
    return path


def run(nb: Notebook, quick: bool) -> list[Figure]:
    rows = 200_000 if quick else 2_000_000
    rounds = 11 if quick else 21  # each run is short: more rounds for a steady median
    path = taxi_parquet(rows)
    nb.panel_refreshing(True)  # as a user would have it
    nb.run(_LOAD.format(path=path))

    variants = {
        "map_batches": lambda: nb.timed(_PLAIN) + nb.timed(_COUNT_PLAIN),
        "ray_data": lambda: nb.timed(_MAGIC) + nb.timed(_COUNT_MAGIC),
        "pandas": lambda: nb.timed(_PANDAS),
    }
    for one in variants.values():
        one()
    log("data: rounds")
    samples = interleaved(variants, rounds)
    counts = {name: nb.ns[name] for name in ("kept_plain", "kept_magic", "kept_pandas")}
    nb.run("del taxi_ds, taxi_df, trips, trips_plain")
    ratio, ratios = paired_ratio(samples, "ray_data", "map_batches")
    pandas_ratio, _ = paired_ratio(samples, "ray_data", "pandas")
    figure = Figure(
        "data", ratio, 1.05,
        how=f"count of rows kept by the tutorial's filter on {rows:,} taxi rows: `%%ray_data --filter` over "
            "the same hand-written `map_batches`",
        details=[f"{name}: {spread(values, 1, ' s')}" for name, values in samples.items()]
        + ["per-round ratios: " + ", ".join(f"{r:.3f}" for r in ratios),
           f"ray_data over single-process pandas: {pandas_ratio:.1f}",
           f"rows kept: {counts}"],
    )
    if len(set(counts.values())) != 1:
        figure.problem = f"the variants kept different rows: {counts}"
    return [figure]
