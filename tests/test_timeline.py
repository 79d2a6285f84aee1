"""Timeline on a real local Ray (2 CPUs): chain vs tree aggregation of 8 values."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from ray_magic.timeline import (
    Bar,
    build_timeline,
    fetch_events,
    parse_task_name,
)

HOSTILE = "<img src=x onerror=alert(1)>"
SVG = "{http://www.w3.org/2000/svg}"


def test_parse_task_name() -> None:
    assert parse_task_name("add [cell 7]") == ("add", 7)
    assert parse_task_name("Acc.inc [cell 12]") == ("Acc.inc", 12)
    assert parse_task_name("cell 3") == ("cell 3", 3)
    assert parse_task_name("f(3) [cell 2]") == ("f(3)", 2)
    assert parse_task_name("add") == ("add", None)
    assert parse_task_name("Acc.inc") == ("Acc.inc", None)
    assert parse_task_name("cell x") == ("cell x", None)


@pytest.fixture(scope="module")
def ray_env():
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    # Reuse the session's Ray when it has the 2 CPUs these tests reason about.
    if ray.is_initialized() and ray.cluster_resources().get("CPU") != 2:
        ray.shutdown()
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:

        @ray.remote
        def add(x, y):
            time.sleep(0.2)
            return x + y

        @ray.remote
        def boom():
            raise ValueError("boom")

        @ray.remote
        class Acc:
            def inc(self, x):
                time.sleep(0.05)
                return x

        # both workers up before timing anything, so the tree can run 2 at once
        ray.get([add.remote(0, 0) for _ in range(4)])

        chain = add.options(name="add [cell 3]").remote(1, 2)
        for v in range(3, 9):
            chain = add.options(name="add [cell 3]").remote(chain, v)
        assert ray.get(chain) == 36

        level = list(range(1, 9))
        while len(level) > 1:
            level = [add.options(name="add [cell 4]").remote(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        assert ray.get(level[0]) == 36

        with pytest.raises(ValueError):
            ray.get(boom.options(name="boom [cell 5]").remote())
        acc = Acc.remote()
        ray.get(acc.inc.options(name="Acc.inc [cell 6]").remote(1))
        ray.get(acc.inc.remote(2))  # default name: "Acc.inc"
        ray.get(add.options(name=f"{HOSTILE} [cell 9]").remote(1, 1))

        # fetch once for the tests that only read (each fetch takes over a second)
        want = {3: 7, 4: 7, 5: 1, 6: 1, 9: 1, None: 1}  # None: the default-named call
        events = _poll(lambda ev: all(_count_cell(ev, c) >= n for c, n in want.items()))
        job = ray.get_runtime_context().get_job_id()
        yield ray, job, events
    finally:
        if started:
            ray.shutdown()


def _count_cell(events: list[dict], cell: int | None) -> int:
    tl = build_timeline(events, known_names=lambda n: n == "Acc.inc")
    return sum(b.cell == cell for b in tl.bars)


def _poll(done: Callable[[list[dict]], bool], timeout: float = 20) -> list[dict]:
    """Task events are flushed about once a second: fetch until ``done(events)``."""
    deadline = time.monotonic() + timeout
    while True:
        events = fetch_events()
        if done(events) or time.monotonic() > deadline:
            return events


def _max_concurrent(bars: list[Bar]) -> int:
    edges = sorted([(b.start, 1) for b in bars] + [(b.end, -1) for b in bars])
    # at equal times, ends (-1) sort first: touching bars do not count as overlap
    run = peak = 0
    for _, d in edges:
        run += d
        peak = max(peak, run)
    return peak


def test_chain_never_overlaps(ray_env) -> None:
    _, _, events = ray_env
    tl = build_timeline(events, cell=3)
    assert len(tl.bars) == 7
    assert {b.label for b in tl.bars} == {"add"} and {b.cell for b in tl.bars} == {3}
    assert not any(b.failed for b in tl.bars)
    assert tl.bars[0].start == 0.0
    for a, b in zip(tl.bars, tl.bars[1:]):
        assert a.end <= b.start, (a, b)
    assert tl.span >= 7 * 0.2


def test_tree_overlaps_at_most_cpus_and_is_shorter(ray_env) -> None:
    _, _, events = ray_env
    chain = build_timeline(events, cell=3)
    tree = build_timeline(events, cell=4)
    assert len(tree.bars) == 7
    assert _max_concurrent(tree.bars) == 2  # some overlap, never more than 2 CPUs
    assert _max_concurrent(chain.bars) == 1
    assert tree.span < chain.span


def test_failed_task_marked(ray_env) -> None:
    _, _, events = ray_env
    tl = build_timeline(events, cell=5)
    [bar] = tl.bars
    assert bar.failed and bar.label == "boom" and bar.func == "boom"
    root = ET.fromstring(tl.svg())
    failed = [g for g in root.iter(f"{SVG}g") if g.get("class") == "failed"]
    assert len(failed) == 1
    assert "FAILED" in failed[0].find(f"{SVG}title").text
    assert "1 failed" in tl.text()
    # the chain's bars are not failed, nor marked
    assert 'class="failed"' not in build_timeline(events, cell=3).svg()


def test_actor_calls_named_and_default(ray_env) -> None:
    # .options(name=...) on an actor method shows in ray.timeline() like a task's
    _, _, events = ray_env
    [bar] = build_timeline(events, cell=6).bars
    assert (bar.label, bar.cell, bar.func) == ("Acc.inc", 6, "Acc.inc")
    # a default-named call has no cell: kept only if the caller knows the name
    everything = build_timeline(events)
    assert "Acc.inc" not in [b.label for b in everything.bars if b.cell is None]
    known = build_timeline(events, known_names=lambda n: n.startswith("Acc."))
    assert [(b.label, b.cell) for b in known.bars if b.label == "Acc.inc"] == [
        ("Acc.inc", 6),
        ("Acc.inc", None),
    ]


def test_svg_well_formed_and_hostile_label_escaped(ray_env) -> None:
    _, _, events = ray_env
    tl = build_timeline(events, cell=9)
    assert [b.label for b in tl.bars] == [HOSTILE]
    raw = tl.svg()
    root = ET.fromstring(raw)
    assert root.tag == f"{SVG}svg"
    assert not list(root.iter("img")) and not list(root.iter(f"{SVG}img"))
    assert "<img" not in raw and "&lt;img" in raw
    assert any(HOSTILE in (t.text or "") for t in root.iter(f"{SVG}title"))
    html = tl._repr_html_()
    assert "<img" not in html and html.count("<svg") == 1
    # the whole notebook's timeline too, and an empty one
    ET.fromstring(build_timeline(events).svg())
    ET.fromstring(build_timeline([]).svg())
    # characters XML cannot hold at all do not break it either
    bad = [dict(e, cat="task::a\x01\x1b]0;b [cell 1]") for e in events if "[cell 9]" in e["cat"]]
    ET.fromstring(build_timeline(bad).svg())


def test_text_summary_per_worker(ray_env) -> None:
    _, _, events = ray_env
    tl = build_timeline(events, cell=4)
    text = tl.text()
    assert repr(tl) == text
    stats = tl.workers()
    assert sum(s.tasks for s in stats) == 7
    for s in stats:
        assert f"worker {s.worker[:8]}" in text
        assert abs(s.busy + s.idle - tl.span) < 1e-6
        assert s.busy >= 0.2 * s.tasks * 0.9
    assert "tasks" in text and "busy" in text and "idle" in text
    assert "<td>" in tl._repr_html_()


def test_filters_job_and_last_seconds(ray_env) -> None:
    _, job, events = ray_env
    assert len(build_timeline(events, cell=3, job_id=job).bars) == 7
    assert build_timeline(events, cell=3, job_id="ffffff7f").bars == []
    now = time.time()
    assert build_timeline(events, cell=3, last_seconds=3600, now=now).bars
    assert build_timeline(events, cell=3, last_seconds=0.001, now=now + 3600).bars == []


def test_cancelled_task_marked_failed(ray_env) -> None:
    # a cancel does not wake a sleeping task: it ends with KeyboardInterrupt, which
    # Ray records in the task event's own args (replacing its task_id)
    ray, job, _ = ray_env

    @ray.remote
    def slow():
        time.sleep(0.6)

    ref = slow.options(name="slow [cell 8]").remote()
    time.sleep(0.3)
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref)
    events = _poll(lambda ev: _count_cell(ev, 8) >= 1)
    [bar] = build_timeline(events, cell=8).bars
    assert bar.failed and bar.label == "slow"
    assert len(build_timeline(events, cell=8, job_id=job).bars) == 1


def test_crashed_worker_task_marked_failed(ray_env) -> None:
    # last: a dying worker loses its unflushed events, which fetch_events adds back
    ray, _, _ = ray_env

    @ray.remote(max_retries=0)
    def die():
        time.sleep(0.1)
        os._exit(1)

    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(die.options(name="die [cell 7]").remote())
    tl = build_timeline(_poll(lambda ev: _count_cell(ev, 7) >= 1), cell=7)
    [bar] = tl.bars
    assert bar.failed and bar.label == "die"
    assert bar.node in {n["NodeManagerAddress"] for n in ray.nodes()}
    ET.fromstring(tl.svg())
