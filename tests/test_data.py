"""%%ray_data transforms and %ray_data previews on real data and a real local Ray."""
import pandas as pd
import pytest
from conftest import run

from ray_magic.data import DatasetPreview
from ray_magic.taxi import generate_trips


def ok(result):
    if not result.success:
        raise AssertionError(f"cell failed: {result.error_before_exec or result.error_in_exec!r}")
    return result.result


@pytest.fixture(scope="module")
def trips():
    return generate_trips(3000, seed=7)


@pytest.fixture
def nb(ip, trips):
    ip.user_ns["trips"] = trips
    ok(run(ip, "import ray\nds = ray.data.from_pandas(trips).repartition(4)"))
    return ip


def test_pandas_transform_captures_notebook_variables(nb, trips):
    ok(run(nb, "rate = 1.5"))
    ok(run(nb, "%%ray_data priced = ds\ndf['Fare_Scaled'] = df['Fare_Amt'] * rate\ndf"))
    out = nb.user_ns["priced"].to_pandas()
    assert len(out) == len(trips)
    assert (out["Fare_Scaled"] - out["Fare_Amt"] * 1.5).abs().max() < 1e-9


def test_filter_keeps_rows_where_the_mask_is_true(nb, trips):
    ok(run(nb, '%%ray_data filtered = ds --filter\n(df["Trip_Distance"] > 2) & (df["Passenger_Count"] > 2)'))
    expected = trips[(trips["Trip_Distance"] > 2) & (trips["Passenger_Count"] > 2)]
    assert 0 < len(expected) < len(trips)
    assert nb.user_ns["filtered"].count() == len(expected)


@pytest.mark.parametrize("batch_format", ["pyarrow", "numpy"])
def test_filter_in_other_batch_formats(nb, trips, batch_format):
    ok(run(nb, f"%%ray_data far = ds --filter --batch-format {batch_format}\n"
               "import numpy as np\nnp.asarray(batch['Trip_Distance']) > 5"))
    assert nb.user_ns["far"].count() == int((trips["Trip_Distance"] > 5).sum())


def test_rows_form_runs_per_row(nb, trips):
    ok(run(nb, "%%ray_data tipped = ds --rows\n{'tip_share': row['Tip_Amt'] / max(row['Total_Amt'], 0.01)}"))
    out = nb.user_ns["tipped"].to_pandas()
    assert list(out.columns) == ["tip_share"] and len(out) == len(trips)
    ok(run(nb, "%%ray_data credit = ds --rows --filter\nrow['Payment_Type'] == 'Credit'"))
    assert nb.user_ns["credit"].count() == int((trips["Payment_Type"] == "Credit").sum())


def test_class_form_runs_on_an_actor_pool(nb, trips):
    ok(run(nb, "offset = 100"))
    ok(run(nb, "%%ray_data shifted = ds --concurrency 2 --num-cpus 0.5\nclass Shift:\n    def __init__(self):\n"
               "        self.offset = offset\n        import os\n        self.pid = os.getpid()\n"
               "    def __call__(self, batch):\n        batch['shifted'] = batch['Passenger_Count'] + self.offset\n"
               "        batch['pid'] = self.pid\n        return batch\n"))
    out = nb.user_ns["shifted"].to_pandas()
    assert (out["shifted"] == out["Passenger_Count"] + 100).all()
    assert out["pid"].nunique() <= 2  # a pool of at most 2 actors did the work


def test_preview_shows_columns_count_and_first_rows(nb, trips):
    preview = ok(run(nb, "%ray_data ds -n 3"))
    assert isinstance(preview, DatasetPreview)
    assert preview.count == len(trips)
    assert [name for name, _ in preview.columns][:3] == list(trips.columns[:3])
    assert len(preview.first) == 3
    html = preview._repr_html_()
    assert "<table" in html and "3,000 rows" in html and "Trip_Distance" in html
    text = repr(preview)
    assert "3,000 rows" in text and "vendor_name" in text


def test_preview_without_out_and_count_and_schema(nb, trips):
    preview = ok(run(nb, "%%ray_data ds\ndf[['Fare_Amt']]"))
    assert isinstance(preview, DatasetPreview) and [c for c, _ in preview.columns] == ["Fare_Amt"]
    assert ok(run(nb, "%ray_data ds --count")) == len(trips)
    schema = ok(run(nb, "%ray_data ds --schema"))
    assert schema.count is None and len(schema.columns) == 18


def test_previews_are_tracked_as_dataset_runs(nb):
    from ray_magic.tracker import tracker

    before = len(tracker.datasets)
    ok(run(nb, "%ray_data ds -n 2"))
    runs = tracker.datasets[before:]
    assert runs and all(r.state == "finished" for r in runs)
    assert any(r.operators for r in runs)


def test_hostile_column_names_and_values_are_escaped(nb):
    nb.user_ns["hostile"] = pd.DataFrame({"<img src=x onerror=alert(1)>": ["<script>x</script>"]})
    html = ok(run(nb, "%ray_data ray.data.from_pandas(hostile)"))._repr_html_()
    assert "<img" not in html and "<script>" not in html and "&lt;img" in html
