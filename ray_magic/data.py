"""%%ray_data transforms and %ray_data previews of Ray Datasets."""
from __future__ import annotations

import html
import re
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from . import remote_side
from .cells import CellError, cell_filename, compile_body, missing_names, parse_cell, single_class
from .options import amount, count, parse_line
from .tracker import tracker

BATCH_FORMATS = ("pandas", "pyarrow", "numpy")
_TARGET = re.compile(r"^\s*(?:(?P<out>[A-Za-z_]\w*)\s*=\s*)?(?P<src>[A-Za-z_][\w.]*)(?P<rest>(?:\s.*)?)$")


@magic_arguments(name="%ray_data")  # usage: %%ray_data
@argument("--batch-format", choices=BATCH_FORMATS, default="pandas", help="How each batch is handed over.")
@argument("--batch-size", type=count, help="Rows per batch (Ray's default when unset).")
@argument("--filter", action="store_true", help="The last expression is a mask: keep the rows where it is true.")
@argument("--rows", action="store_true", help="Run the body per row, named `row` (a dict).")
@argument("--num-cpus", type=amount, help="CPUs per transform task or actor.")
@argument("--concurrency", type=count, help="Actors in the pool for a class transform (default 1).")
def transform_args(line: str) -> None:
    """%%ray_data [OUT =] IN [options]: the cell is a transform of Dataset IN, applied lazily.

    The batch is `batch` (and `df` for pandas); the last expression is the new
    batch. With --filter it is a mask; with --rows the body runs per `row`. A cell
    that defines one class with __call__(self, batch) runs on a pool of actors.
    Without OUT, the new dataset is previewed.
    """


@magic_arguments(name="ray_data")
@argument("expr", nargs="+", help="An expression that evaluates to a Dataset.")
@argument("-n", type=count, default=5, dest="rows", help="Rows to show (default 5).")
@argument("--count", action="store_true", help="Only count the rows.")
@argument("--schema", action="store_true", help="Only show the columns and their types.")
@argument("--stats", action="store_true", help="Add Ray's execution statistics.")
def preview_args(line: str) -> None:
    """%ray_data EXPR: preview a Dataset: columns and types, row count, first rows."""


def _parse(func, line: str, magic: str, keep_quotes: bool = False):
    return parse_line(func, line, magic, keep_quotes)


def _dataset_type():
    from ray.data import Dataset

    return Dataset


def _evaluate_dataset(expr: str, namespace: dict, magic: str) -> Any:
    """Evaluate EXPR in the notebook; anything but a Dataset is a UsageError naming its type."""
    try:
        value = eval(compile(expr, "<ray_data>", "eval"), namespace)
    except SyntaxError as err:
        raise UsageError(f"{magic}: {expr!r} is not an expression ({err.msg})") from None
    except NameError as err:
        raise UsageError(f"{magic}: {err}") from None
    if not isinstance(value, _dataset_type()):
        raise UsageError(f"{magic}: {expr} has type {type(value).__name__}, not a Ray Dataset")
    return value


# --- transforms ------------------------------------------------------------------------

def transform_magic(magics: Any, line: str, cell: str, namespace: dict) -> Any:
    match = _TARGET.match(line or "")
    if not match:
        raise UsageError("%%ray_data: expected [OUT =] IN [options], with IN a Dataset variable")
    args = _parse(transform_args, match.group("rest") or "", "%%ray_data")
    if args.filter and args.batch_format == "numpy" and args.rows:
        raise UsageError("%%ray_data: --rows takes no --batch-format")
    try:
        parsed = parse_cell(cell, cell_filename(magics.current_cell()), magic_line=f"%%ray_data {line}")
    except CellError as err:
        raise UsageError(f"%%ray_data: {err}") from None
    src = match.group("src")
    if src.split(".")[0] not in namespace:
        raise UsageError(f"%%ray_data: IN {src!r} is not defined in the notebook")
    magics.ensure_ray()
    dataset = _evaluate_dataset(src, namespace, "%%ray_data")
    try:
        new = build_transform(dataset, parsed, namespace, args)
    except CellError as err:
        raise UsageError(f"%%ray_data: {err}") from None
    if match.group("out"):
        namespace[match.group("out")] = new
        return None
    return preview(new, rows=5, label=f"cell {magics.current_cell()}", cell=magics.current_cell())


def build_transform(dataset: Any, cell: Any, namespace: dict, args: Any) -> Any:
    """The lazily transformed dataset a %%ray_data cell describes."""
    given = {"row"} if args.rows else ({"batch", "df"} if args.batch_format == "pandas" else {"batch"})
    if cell.classes:
        return _class_transform(dataset, cell, namespace, args)
    free = [name for name in cell.free if name not in given]
    missing = missing_names(free, namespace)
    if missing:
        raise CellError(f"name {missing[0]!r} is not defined in the notebook")
    captured = {name: namespace[name] for name in free if name in namespace}
    _check_sendable(captured)
    params = ["row"] if args.rows else (["batch", "df"] if args.batch_format == "pandas" else ["batch"])
    body = compile_body(cell, params, name="transform")
    body.__globals__.update(captured)  # the notebook variables the cell reads travel with it
    text = "".join(__import__("linecache").cache[cell.filename][2])
    if args.rows:
        function = remote_side.with_cell_source(body, cell.filename, text)
        return dataset.filter(function) if args.filter else dataset.map(function, **_resources(args))
    function = remote_side.batch_transform(body, args.batch_format, args.filter, cell.filename, text)
    return dataset.map_batches(function, batch_format=args.batch_format, **_batch_options(args))


def _class_transform(dataset: Any, cell: Any, namespace: dict, args: Any) -> Any:
    class_name = single_class(cell)
    free = [name for name in cell.free if name not in ("batch", "df", "row")]
    missing = missing_names(free, namespace)
    if missing:
        raise CellError(f"name {missing[0]!r} is not defined in the notebook")
    captured = {name: namespace[name] for name in free if name in namespace}
    _check_sendable(captured)
    scope = {"__name__": "__ray_magic_cell__", **captured}
    exec(compile(cell.tree, cell.filename, "exec"), scope)
    cls = scope[class_name]
    if "__call__" not in vars(cls):
        raise CellError(f"class {class_name} needs a __call__(self, batch) method")
    from ray.data import ActorPoolStrategy

    options = _resources(args)
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    compute = ActorPoolStrategy(size=args.concurrency or 1)
    return dataset.map_batches(cls, batch_format=args.batch_format, compute=compute, **options)


def _check_sendable(captured: dict) -> None:
    """Name a captured variable that cannot go to a worker now, not when the dataset runs."""
    from .tasks import unpicklable

    culprit = unpicklable(list(captured), list(captured.values()))
    if culprit:
        raise CellError(culprit)


def _resources(args: Any) -> dict:
    return {"num_cpus": args.num_cpus} if args.num_cpus is not None else {}


def _batch_options(args: Any) -> dict:
    options = _resources(args)
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    if args.concurrency is not None:
        from ray.data import TaskPoolStrategy

        options["compute"] = TaskPoolStrategy(size=args.concurrency)
    return options


# --- previews ----------------------------------------------------------------------------

def preview_magic(magics: Any, line: str, namespace: dict) -> Any:
    args = _parse(preview_args, line, "%ray_data", keep_quotes=True)  # EXPR is Python: its quotes stay
    expr = " ".join(args.expr)
    if re.match(r"^[A-Za-z_]\w*$", expr) and expr not in namespace:
        raise UsageError(f"%ray_data: name {expr!r} is not defined in the notebook")
    magics.ensure_ray()
    dataset = _evaluate_dataset(expr, namespace, "%ray_data")
    cell = magics.current_cell()
    if args.count:
        return _tracked(lambda: dataset.count(), f"{expr}.count()", cell)
    return preview(dataset, rows=args.rows, label=expr, cell=cell, schema_only=args.schema, stats=args.stats)


def _tracked(action, label: str, cell: int | None) -> Any:
    """Run a dataset execution with its progress in the panel and no log lines in the cell."""
    from .data_progress import DatasetRun, track_executions

    run = DatasetRun(label=label, cell=cell)
    tracker.add_dataset_run(run)
    with track_executions(run):
        return action()


def preview(dataset: Any, rows: int, label: str, cell: int | None, schema_only: bool = False,
            stats: bool = False) -> DatasetPreview:
    """Columns and types, row count and the first rows of a dataset."""
    schema = _tracked(lambda: dataset.schema(), f"{label}.schema()", cell)
    columns = list(zip(schema.names, [str(t) for t in schema.types])) if schema is not None else []
    if schema_only:
        return DatasetPreview(label, columns, None, None, None)
    first = _tracked(lambda: dataset.limit(rows).to_pandas(), f"{label}.limit({rows})", cell) if rows else None
    total = _tracked(lambda: dataset.count(), f"{label}.count()", cell)
    return DatasetPreview(label, columns, total, first, dataset.stats() if stats else None)


class DatasetPreview:
    """What %ray_data shows; knows how to draw itself as HTML (all escaped) and as text."""

    def __init__(self, label: str, columns: list[tuple[str, str]], count: int | None, first: Any,
                 stats: str | None) -> None:
        self.label, self.columns, self.count, self.first, self.stats = label, columns, count, first, stats

    def __repr__(self) -> str:
        parts = [f"Dataset {self.label}" + (f": {self.count:,} rows" if self.count is not None else "")]
        parts.append("columns: " + ", ".join(f"{name} ({kind})" for name, kind in self.columns))
        if self.first is not None:
            parts.append(self.first.to_string(max_colwidth=40))
        if self.stats:
            parts.append(self.stats)
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = f"<b>Dataset {esc(self.label)}</b>"
        if self.count is not None:
            head += f": {self.count:,} rows"
        cols = ", ".join(f"<code>{esc(name)}</code> <i>{esc(kind)}</i>" for name, kind in self.columns)
        table = self.first.to_html(escape=True, max_rows=50, border=0) if self.first is not None else ""
        stats = f"<pre>{esc(self.stats)}</pre>" if self.stats else ""
        return f"<div>{head}<br><small>{cols}</small>{table}{stats}</div>"
