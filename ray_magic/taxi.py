"""Offline, deterministic stand-in for the tutorial's NYC taxi CSVs (2009-2011).

The tutorial downloads ``yellow_tripdata_<month>.csv`` from S3; without internet we
synthesise trips with the same 18 columns, types and plausible distributions::

    python -m ray_magic.taxi --rows 100000 --out examples/data/taxi

Randomness comes in fixed blocks of ``BLOCK_ROWS`` rows, each seeded from
(seed, month, block index) and always drawn in full, so a month's rows do not
depend on ``chunk_rows`` and ``generate_trips(n)`` is a prefix of
``generate_trips(m)`` for ``n <= m``. Money, distances and coordinates are kept as
integers (cents, hundredths of a mile, micro-degrees) until output: totals add up
to the cent and every CSV value has a fixed number of decimals, so readers that
infer types from the first block (pyarrow, Ray) always see floats.

Does not import ray.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

COLUMNS: list[str] = [
    "vendor_name",
    "Trip_Pickup_DateTime",
    "Trip_Dropoff_DateTime",
    "Passenger_Count",
    "Trip_Distance",
    "Start_Lon",
    "Start_Lat",
    "Rate_Code",
    "store_and_forward",
    "End_Lon",
    "End_Lat",
    "Payment_Type",
    "Fare_Amt",
    "surcharge",
    "mta_tax",
    "Tip_Amt",
    "Tolls_Amt",
    "Total_Amt",
]

DEFAULT_MONTHS: tuple[str, ...] = ("2009-12", "2010-06", "2010-07", "2011-04")
BLOCK_ROWS = 16_384  # RNG granularity; changing it changes every file
GENERATOR_VERSION = 1  # bump when the output changes, to invalidate cached files

# Bounding box every coordinate stays in (micro-degrees), roughly Manhattan to JFK.
LON_RANGE = (-74_020_000, -73_750_000)
LAT_RANGE = (40_600_000, 40_880_000)

VENDORS = np.array(["VTS", "CMT", "DDS"])
VENDOR_P = [0.46, 0.44, 0.10]
PAYMENTS = np.array(["CASH", "Credit", "No Charge", "Dispute"])
PAYMENT_P = [0.70, 0.285, 0.01, 0.005]
PASSENGER_P = [0.76, 0.155, 0.03, 0.015, 0.035, 0.005]  # 1..6; >2 is ~8.5%

# Relative pickups per hour of day: quiet before dawn, busy in the evening.
HOUR_W = np.array(
    [45, 33, 25, 18, 13, 10, 20, 35, 45, 47, 45, 46,
     49, 49, 51, 49, 43, 50, 60, 63, 58, 57, 57, 52], dtype=float,
)  # fmt: skip

# Pickup hot spots: lon, lat (degrees), spread (degrees), weight.
ZONES = np.array(
    [
        [-73.982, 40.755, 0.010, 0.34],  # Midtown
        [-73.995, 40.728, 0.008, 0.22],  # Village / Downtown
        [-73.958, 40.775, 0.008, 0.13],  # Upper East Side
        [-73.976, 40.785, 0.008, 0.11],  # Upper West Side
        [-74.008, 40.711, 0.004, 0.07],  # Financial District
        # Zones above are Manhattan (JFK flat fare applies), below are not.
        [-73.965, 40.685, 0.015, 0.08],  # Brooklyn
        [-73.925, 40.755, 0.012, 0.05],  # Queens
    ]
)
MANHATTAN_ZONES = 5
JFK = (-73.785, 40.645)
LGA = (-73.872, 40.774)
MI_PER_DEG_LAT = 69.0
MI_PER_DEG_LON = 52.4  # at 40.7 N
AVENUE_BEARING = np.deg2rad(29.0)  # Manhattan's grid is tilted from true north

NYC_TOLL = 457  # cents; the 2009 bridge/tunnel toll seen in the tutorial
JFK_FLAT = 4500  # cents; flat fare between Manhattan and JFK


def _month_bounds(month: str) -> tuple[int, int]:
    """Epoch seconds of the month's first instant and its length in days."""
    first = np.datetime64(month, "M")
    days = (first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")
    start = first.astype("datetime64[s]").astype(np.int64)
    return int(start), int(days.astype(np.int64))


def _in_box(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (
        (lon * 1e6 >= LON_RANGE[0])
        & (lon * 1e6 <= LON_RANGE[1])
        & (lat * 1e6 >= LAT_RANGE[0])
        & (lat * 1e6 <= LAT_RANGE[1])
    )


def _block_rng(seed: int, month: str, block: int) -> np.random.Generator:
    year, mon = (int(p) for p in month.split("-"))
    return np.random.default_rng([seed, year * 100 + mon, block])


def _draw_block(rng: np.random.Generator, month: str) -> dict[str, np.ndarray]:
    """One block of trips as integer arrays (cents, 1/100 mile, micro-degrees, s)."""
    n = BLOCK_ROWS
    vendor = rng.choice(3, n, p=VENDOR_P)
    passengers = rng.choice(6, n, p=PASSENGER_P) + 1
    payment = rng.choice(4, n, p=PAYMENT_P)

    # Pickup time: uniform day, hour by demand, minute; VTS logs whole minutes.
    start, days = _month_bounds(month)
    day = rng.integers(0, days, n)
    hour = rng.choice(24, n, p=HOUR_W / HOUR_W.sum())
    secs = rng.integers(0, 3600, n)
    secs = np.where(vendor == 0, secs // 60 * 60, secs)
    pickup = start + day * 86_400 + hour * 3600 + secs
    weekday = (pickup // 86_400 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0

    # Pickup place from the hot spots, and a lognormal distance (median ~1.7 mi).
    zone_idx = rng.choice(len(ZONES), n, p=ZONES[:, 3] / ZONES[:, 3].sum())
    zone = ZONES[zone_idx]
    s_lon = zone[:, 0] + rng.normal(0, 1, n) * zone[:, 2]
    s_lat = zone[:, 1] + rng.normal(0, 1, n) * zone[:, 2]
    dist = np.minimum(rng.lognormal(np.log(1.7), 0.75, n), 45.0)

    # Dropoff: straight-line distance / detour, mostly along the avenues.
    detour = rng.uniform(1.15, 1.45, n)
    angle = np.where(
        rng.random(n) < 0.6,
        AVENUE_BEARING + np.pi * rng.integers(0, 2, n) + rng.normal(0, 0.25, n),
        rng.uniform(0, 2 * np.pi, n),
    )
    d_lon = dist / detour * np.sin(angle) / MI_PER_DEG_LON
    d_lat = dist / detour * np.cos(angle) / MI_PER_DEG_LAT
    # Heading out of the box? Go the other way (clipping alone piles trips on its edge).
    outside = ~_in_box(s_lon + d_lon, s_lat + d_lat)
    e_lon = s_lon + np.where(outside, -d_lon, d_lon)
    e_lat = s_lat + np.where(outside, -d_lat, d_lat)

    # ~3% JFK and ~3% LGA trips: one end at the airport, the other in town.
    trip = rng.choice(3, n, p=[0.94, 0.03, 0.03])  # 0 town, 1 JFK, 2 LGA
    for kind, (a_lon, a_lat) in ((1, JFK), (2, LGA)):
        at = trip == kind
        ap_lon = a_lon + rng.normal(0, 0.003, n)
        ap_lat = a_lat + rng.normal(0, 0.002, n)
        from_airport = rng.random(n) < 0.5
        town_lon, town_lat = s_lon.copy(), s_lat.copy()
        s_lon = np.where(at & from_airport, ap_lon, s_lon)
        s_lat = np.where(at & from_airport, ap_lat, s_lat)
        e_lon = np.where(at, np.where(from_airport, town_lon, ap_lon), e_lon)
        e_lat = np.where(at, np.where(from_airport, town_lat, ap_lat), e_lat)
    s_lon, e_lon = (np.clip(np.round(x * 1e6), *LON_RANGE) for x in (s_lon, e_lon))
    s_lat, e_lat = (np.clip(np.round(x * 1e6), *LAT_RANGE) for x in (s_lat, e_lat))
    # Airport distances follow from the geometry (about 17 mi JFK, 9 mi LGA).
    crow = np.hypot(
        (e_lon - s_lon) / 1e6 * MI_PER_DEG_LON, (e_lat - s_lat) / 1e6 * MI_PER_DEG_LAT
    )
    dist = np.where(trip > 0, crow * detour, dist)
    dist_c = np.maximum(np.round(dist * 100), 1).astype(np.int64)  # 1/100 mile
    dist = dist_c / 100

    # Duration: slower by day, faster on long (highway) trips; VTS whole minutes.
    day_time = (hour >= 7) & (hour < 20)
    mph = np.where(day_time, 11.0, 16.0) * np.exp(rng.normal(0, 0.3, n))
    mph = np.minimum(mph * (1 + 0.04 * dist), 40.0)
    minutes = dist / mph * 60 + rng.exponential(1.5, n) + 0.5
    whole_minutes = np.maximum(np.round(minutes), 1) * 60
    dur = np.where(vendor == 0, whole_minutes, np.round(minutes * 60))
    dropoff = pickup + dur.astype(np.int64)

    # 2009 meter: $2.50 + $0.40 per 1/5 mile + $0.40 per 2 slow minutes.
    slow_min = np.maximum(minutes - dist * 3.0, 0) * 0.5
    units = np.maximum(np.floor(dist * 5 + rng.normal(0, 0.5, n)), 0) + slow_min // 2
    fare = 250 + 40 * units.astype(np.int64)
    jfk_flat = (trip == 1) & (zone_idx < MANHATTAN_ZONES)
    fare = np.where(jfk_flat, JFK_FLAT, fare)

    # Surcharges: 50c overnight (20-06h), $1 weekday rush (16-20h).
    surcharge = np.where(
        (hour >= 20) | (hour < 6), 50, np.where((hour >= 16) & (weekday < 5), 100, 0)
    )
    mta = np.where(rng.random(n) < 0.995, 50, 0)
    toll_p = np.select([trip == 1, trip == 2, dist > 8], [0.6, 0.4, 0.15], 0.0)
    tolls = np.where(rng.random(n) < toll_p, NYC_TOLL, 0)

    # Tips are only recorded for card payments: 10-30%, often rounded to dollars.
    pct = rng.choice(
        [0.0, 0.10, 0.15, 0.20, 0.25, 0.30], n, p=[0.08, 0.1, 0.3, 0.3, 0.14, 0.08]
    )
    tip = (fare + surcharge) * pct
    tip = np.where(rng.random(n) < 0.6, np.round(tip / 100) * 100, np.round(tip))
    tip = np.where(payment == 1, tip, 0).astype(np.int64)
    total = fare + surcharge + mta + tip + tolls

    # Sparse codes (empty like the sample): only CMT/DDS fill Rate_Code, for JFK flat
    # fares, and CMT rarely logs store_and_forward.
    rate_code = np.where(jfk_flat & (vendor > 0), 2.0, np.nan)
    sf_logged = (vendor == 1) & (rng.random(n) < 0.03)
    store_fwd = np.where(sf_logged, (rng.random(n) < 0.15).astype(float), np.nan)

    return {
        "vendor_name": vendor,
        "Trip_Pickup_DateTime": pickup,
        "Trip_Dropoff_DateTime": dropoff,
        "Passenger_Count": passengers,
        "Trip_Distance": dist_c,
        "Start_Lon": s_lon.astype(np.int64),
        "Start_Lat": s_lat.astype(np.int64),
        "Rate_Code": rate_code,
        "store_and_forward": store_fwd,
        "End_Lon": e_lon.astype(np.int64),
        "End_Lat": e_lat.astype(np.int64),
        "Payment_Type": payment,
        "Fare_Amt": fare,
        "surcharge": surcharge,
        "mta_tax": mta,
        "Tip_Amt": tip,
        "Tolls_Amt": tolls,
        "Total_Amt": total,
    }


# Decimal places of each fixed-point integer column.
_SCALE = {
    "Trip_Distance": 2,
    "Start_Lon": 6,
    "Start_Lat": 6,
    "End_Lon": 6,
    "End_Lat": 6,
    "Fare_Amt": 2,
    "surcharge": 2,
    "mta_tax": 2,
    "Tip_Amt": 2,
    "Tolls_Amt": 2,
    "Total_Amt": 2,
}
_LABELS = {"vendor_name": VENDORS, "Payment_Type": PAYMENTS}
_TIMES = ("Trip_Pickup_DateTime", "Trip_Dropoff_DateTime")


def _rows(seed: int, month: str, first_block: int, rows: int) -> dict[str, np.ndarray]:
    """`rows` rows starting at `first_block`, drawn block by block and truncated."""
    blocks = [
        _draw_block(_block_rng(seed, month, b), month)
        for b in range(first_block, first_block + -(-rows // BLOCK_ROWS))
    ]
    return {c: np.concatenate([blk[c] for blk in blocks])[:rows] for c in COLUMNS}


def _arrow_type(name: str) -> pa.DataType:
    if name in _LABELS:
        return pa.string()
    if name in _TIMES:
        return pa.timestamp("s")  # renders as 'YYYY-MM-DD HH:MM:SS'
    if name in _SCALE:
        return pa.decimal128(18, _SCALE[name])
    return pa.int64()


_ARROW_SCHEMA = pa.schema([(c, _arrow_type(c)) for c in COLUMNS])


def _to_arrow(cols: dict[str, np.ndarray]) -> pa.Table:
    """Arrow table whose CSV rendering matches the tutorial files."""
    arrays = []
    for field in _ARROW_SCHEMA:
        v = cols[field.name]
        if field.name in _LABELS:
            arrays.append(pa.array(_LABELS[field.name]).take(pa.array(v)))
        elif field.name in _SCALE:
            # Fixed-point decimal from the integers, so the CSV says "0.00", not "0".
            words = np.empty((len(v), 2), np.int64)
            words[:, 0], words[:, 1] = v, v >> 63  # little-endian 128-bit
            buffers = [None, pa.py_buffer(words)]
            arrays.append(pa.Array.from_buffers(field.type, len(v), buffers))
        elif v.dtype.kind == "f":  # sparse integer codes: NaN -> empty field
            nan = np.isnan(v)
            arrays.append(pa.array(np.where(nan, 0, v).astype(np.int64), mask=nan))
        else:
            arrays.append(pa.array(v, field.type))
    return pa.Table.from_arrays(arrays, schema=_ARROW_SCHEMA)


def _to_pandas(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """DataFrame with the dtypes `pandas.read_csv` gives for the written CSV."""
    out: dict[str, object] = {}
    for name in COLUMNS:
        v = cols[name]
        if name in _LABELS:
            out[name] = pd.array(_LABELS[name][v], dtype="str")
        elif name in _TIMES:
            strings = pa.array(v, pa.timestamp("s")).cast(pa.string())
            out[name] = pd.array(strings.to_numpy(zero_copy_only=False), dtype="str")
        elif name in _SCALE:
            out[name] = v / 10.0 ** _SCALE[name]
        else:
            out[name] = v
    return pd.DataFrame(out, columns=COLUMNS)


def _check(rows: int, seed: int, months: Sequence[str]) -> None:
    if rows < 0 or seed < 0:
        raise ValueError("rows and seed must be >= 0")
    for m in months:
        try:
            np.datetime64(m, "M")
        except ValueError:
            raise ValueError(f"month must look like 'YYYY-MM', got {m!r}") from None


def generate_trips(rows: int, *, seed: int = 0, month: str = "2009-12") -> pd.DataFrame:
    """`rows` synthetic taxi trips of `month`, equal to reading back the month's CSV.

    Deterministic in (rows, seed, month); fewer rows give a prefix of more rows.
    """
    _check(rows, seed, [month])
    if rows == 0:
        return _to_pandas(_rows(seed, month, 0, 1)).iloc[:0]
    return _to_pandas(_rows(seed, month, 0, rows))


def _split(rows: int, parts: int) -> list[int]:
    return [rows // parts + (i < rows % parts) for i in range(parts)]


def _chunks(rows: int, chunk_rows: int) -> Iterator[tuple[int, int]]:
    """(first block, rows) pieces of about chunk_rows rows, on block boundaries."""
    per_chunk = max(1, chunk_rows // BLOCK_ROWS) * BLOCK_ROWS
    for start in range(0, rows, per_chunk):
        yield start // BLOCK_ROWS, min(per_chunk, rows - start)


def _write_month(
    path: pathlib.Path, rows: int, seed: int, month: str, chunk_rows: int
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    # No quoting: our strings hold no commas, and the tutorial files are unquoted.
    opts = pacsv.WriteOptions(
        include_header=False, quoting_style="none", batch_size=65_536
    )
    with open(tmp, "wb") as f:
        f.write((",".join(COLUMNS) + "\n").encode())
        with pacsv.CSVWriter(f, _ARROW_SCHEMA, write_options=opts) as w:
            for first_block, n in _chunks(rows, chunk_rows):
                w.write_table(_to_arrow(_rows(seed, month, first_block, n)))
    os.replace(tmp, path)  # readers never see a half-written file


def write_taxi_csvs(
    out_dir: str | os.PathLike,
    rows: int,
    *,
    months: Sequence[str] = DEFAULT_MONTHS,
    seed: int = 0,
    chunk_rows: int = 500_000,
    force: bool = False,
) -> list[pathlib.Path]:
    """Write ``yellow_tripdata_<month>.csv`` per month, `rows` rows split across them.

    Written chunk by chunk (memory stays flat). Byte-identical for the same
    (rows, months, seed), whatever `chunk_rows`. Files already written with the
    same arguments (per the ``.taxi_args.json`` sidecar, and unchanged sizes) are
    kept unless `force`. Returns the paths.
    """
    months = list(months)
    _check(rows, seed, months)
    if not months:
        raise ValueError("months must not be empty")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"yellow_tripdata_{m}.csv" for m in months]
    sidecar = out / ".taxi_args.json"
    args = {"version": GENERATOR_VERSION, "rows": rows, "months": months, "seed": seed}

    if not force and sidecar.exists() and all(p.exists() for p in paths):
        try:
            cached = json.loads(sidecar.read_text())
        except ValueError:
            cached = {}
        sizes = {p.name: p.stat().st_size for p in paths}
        if cached.get("args") == args and cached.get("sizes") == sizes:
            return paths

    sidecar.unlink(missing_ok=True)  # invalid until every file is rewritten
    for path, month, n in zip(paths, months, _split(rows, len(months))):
        _write_month(path, n, seed, month, chunk_rows)
    sizes = {p.name: p.stat().st_size for p in paths}
    sidecar.write_text(json.dumps({"args": args, "sizes": sizes}, indent=1))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ray_magic.taxi", description="Write synthetic NYC taxi CSVs."
    )
    p.add_argument(
        "--rows", type=int, default=100_000, help="total rows over all months"
    )
    p.add_argument("--out", default="examples/data/taxi", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--months", nargs="+", default=list(DEFAULT_MONTHS), metavar="YYYY-MM"
    )
    p.add_argument("--chunk-rows", type=int, default=500_000)
    p.add_argument("--force", action="store_true", help="rewrite even if cached")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        paths = write_taxi_csvs(
            a.out,
            a.rows,
            months=a.months,
            seed=a.seed,
            chunk_rows=a.chunk_rows,
            force=a.force,
        )
    except ValueError as e:
        p.error(str(e))
    elapsed = time.perf_counter() - t0
    for path, n in zip(paths, _split(a.rows, len(paths))):
        print(f"{path}  {n:,} rows  {path.stat().st_size / 1e6:.1f} MB")
    print(f"{a.rows:,} rows in {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
