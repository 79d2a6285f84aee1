"""Tests for the offline NYC taxi CSV generator (ray_magic.taxi)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ray_magic import taxi
from ray_magic.taxi import COLUMNS, generate_trips, write_taxi_csvs

# The header of the tutorial's 2009 files, in order.
TUTORIAL_HEADER = (
    "vendor_name,Trip_Pickup_DateTime,Trip_Dropoff_DateTime,Passenger_Count,"
    "Trip_Distance,Start_Lon,Start_Lat,Rate_Code,store_and_forward,End_Lon,End_Lat,"
    "Payment_Type,Fare_Amt,surcharge,mta_tax,Tip_Amt,Tolls_Amt,Total_Amt"
)
ROWS = 40_003  # not divisible by 4, and more than two RNG blocks per month
MONEY = ["Fare_Amt", "surcharge", "mta_tax", "Tip_Amt", "Tolls_Amt", "Total_Amt"]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[pathlib.Path]:
    return write_taxi_csvs(tmp_path_factory.mktemp("taxi"), ROWS, seed=7)


@pytest.fixture(scope="module")
def trips(written: list[pathlib.Path]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in written], ignore_index=True)


def cents(s: pd.Series) -> np.ndarray:
    return np.round(s.to_numpy() * 100).astype(np.int64)


def test_columns_match_tutorial() -> None:
    assert ",".join(COLUMNS) == TUTORIAL_HEADER


def test_files_names_header_and_row_split(written: list[pathlib.Path]) -> None:
    assert [p.name for p in written] == [
        f"yellow_tripdata_{m}.csv" for m in ("2009-12", "2010-06", "2010-07", "2011-04")
    ]
    counts = []
    for p in written:
        lines = p.read_text().splitlines()
        assert lines[0] == TUTORIAL_HEADER  # unquoted, like the tutorial files
        counts.append(len(lines) - 1)
    assert sum(counts) == ROWS
    assert max(counts) - min(counts) <= 1


def test_dtypes_read_back(trips: pd.DataFrame) -> None:
    assert list(trips.columns) == COLUMNS
    for col in ["vendor_name", "Payment_Type", "Trip_Pickup_DateTime"]:
        assert pd.api.types.is_string_dtype(trips[col]), col
    assert trips["Passenger_Count"].dtype == np.int64
    floats = ["Trip_Distance", "Start_Lon", "Start_Lat", "End_Lon", "End_Lat"] + MONEY
    for col in floats + ["Rate_Code", "store_and_forward"]:
        assert trips[col].dtype == np.float64, col


def test_generate_trips_equals_csv(written: list[pathlib.Path]) -> None:
    from_csv = pd.read_csv(written[1])
    generated = generate_trips(len(from_csv), seed=7, month="2010-06")
    pd.testing.assert_frame_equal(from_csv, generated, check_exact=True)


def test_generate_trips_prefix_and_seed() -> None:
    small, big = generate_trips(100, seed=3), generate_trips(20_000, seed=3)
    pd.testing.assert_frame_equal(small, big.head(100))
    assert not generate_trips(100, seed=4).equals(small)
    assert len(generate_trips(0)) == 0
    assert list(generate_trips(0).columns) == COLUMNS


def test_deterministic_bytes(tmp_path: pathlib.Path) -> None:
    def digest(out: str, **kw: object) -> list[bytes]:
        paths = write_taxi_csvs(
            tmp_path / out, 40_000, months=["2009-12", "2010-07"], **kw
        )
        return [p.read_bytes() for p in paths]

    first = digest("a", seed=1)
    assert digest("b", seed=1) == first
    # Chunking changes memory use, not the output.
    assert digest("c", seed=1, chunk_rows=1) == first
    assert digest("d", seed=2) != first


def test_value_ranges(trips: pd.DataFrame) -> None:
    for col in ["Start_Lon", "End_Lon"]:
        assert trips[col].between(-74.02, -73.75).all(), col
    for col in ["Start_Lat", "End_Lat"]:
        assert trips[col].between(40.60, 40.88).all(), col
    pickup = pd.to_datetime(trips["Trip_Pickup_DateTime"], format="%Y-%m-%d %H:%M:%S")
    dropoff = pd.to_datetime(trips["Trip_Dropoff_DateTime"], format="%Y-%m-%d %H:%M:%S")
    assert (dropoff >= pickup).all()
    assert trips["Passenger_Count"].between(1, 6).all()
    assert (trips["Trip_Distance"] > 0).all()
    assert set(trips["vendor_name"]) == {"VTS", "CMT", "DDS"}
    assert set(trips["Payment_Type"]) == {"CASH", "Credit", "No Charge", "Dispute"}
    assert set(trips["surcharge"]) == {0.0, 0.5, 1.0}
    assert set(trips["Tolls_Amt"]) == {0.0, 4.57}
    assert (trips["Fare_Amt"] >= 2.5).all()
    parts = sum(cents(trips[c]) for c in MONEY[:-1])
    assert (parts == cents(trips["Total_Amt"])).all()
    assert (trips.loc[trips["Payment_Type"] != "Credit", "Tip_Amt"] == 0).all()
    assert trips["Rate_Code"].isna().mean() > 0.9
    assert trips["store_and_forward"].isna().mean() > 0.9


def test_distributions_are_plausible(trips: pd.DataFrame) -> None:
    assert 1.2 < trips["Trip_Distance"].median() < 2.5
    assert trips["Trip_Distance"].max() > 25
    assert (trips["Passenger_Count"] == 1).mean() > 0.6
    assert 0.01 < (trips["Fare_Amt"] == 45.0).mean() < 0.06  # JFK flat fare
    metered = trips[trips["Fare_Amt"] != 45.0]
    residual = metered["Fare_Amt"] - (2.5 + 2.0 * metered["Trip_Distance"])
    assert abs(residual.median()) < 1.0
    credit = trips[trips["Payment_Type"] == "Credit"]
    assert 0.12 < (credit["Tip_Amt"] / credit["Fare_Amt"]).median() < 0.25


def test_tutorial_filter_keeps_a_few_percent(trips: pd.DataFrame) -> None:
    kept = trips[(trips["Trip_Distance"] > 2) & (trips["Passenger_Count"] > 2)]
    assert 0.01 <= len(kept) / len(trips) <= 0.20


def test_cache_skips_identical_rewrite(tmp_path: pathlib.Path) -> None:
    kw = {"months": ["2009-12"], "seed": 0}
    (path,) = write_taxi_csvs(tmp_path, 1_000, **kw)
    sidecar = json.loads((tmp_path / ".taxi_args.json").read_text())
    assert sidecar["args"]["rows"] == 1_000
    stamp = path.stat().st_mtime_ns
    write_taxi_csvs(tmp_path, 1_000, **kw)
    assert path.stat().st_mtime_ns == stamp
    write_taxi_csvs(tmp_path, 1_000, force=True, **kw)
    assert path.stat().st_mtime_ns != stamp
    write_taxi_csvs(tmp_path, 500, **kw)  # different args: rewritten
    assert len(path.read_text().splitlines()) == 501


def test_bad_arguments(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        write_taxi_csvs(tmp_path, 10, months=["December"])
    with pytest.raises(ValueError):
        generate_trips(-1)
    with pytest.raises(ValueError):
        write_taxi_csvs(tmp_path, 10, months=[])


def test_cli(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert taxi.main(["--rows", "1000", "--out", str(tmp_path), "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("yellow_tripdata_") == 4
    assert "1,000 rows in" in out
    assert len(list(tmp_path.glob("yellow_tripdata_*.csv"))) == 4


def test_does_not_import_ray() -> None:
    code = "import sys, ray_magic.taxi; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
