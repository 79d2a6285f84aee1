"""Code that runs inside Ray workers.

Sent by value (cloudpickle), so a cluster needs no ray_magic installed. It only
puts the cell's text into the worker's linecache, so that a traceback formed in
the worker shows the cell's own lines.
"""
import functools
import inspect
import linecache
import sys


def _register(filename, text):
    if filename not in linecache.cache:
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)


def with_cell_source(fn, filename, text):
    """Wrap `fn` so the worker knows the source of the cell it came from."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        _register(filename, text)
        try:
            return fn(*args, **kwargs)
        finally:
            _flush()

    return run


def _flush():
    # Prints reach the notebook only once the worker's log file has them.
    sys.stdout.flush()
    sys.stderr.flush()


def init_with_cell_source(cls, filename, text):
    """Make an actor class register its cell's source when an actor starts."""
    original = cls.__init__
    if original is object.__init__:
        # No __init__ of its own: keep the no-argument signature, and wrap nothing
        # (Ray cannot set a signature on the C-level object.__init__).
        def __init__(self):
            _register(filename, text)

    else:

        def __init__(self, *args, **kwargs):
            _register(filename, text)
            original(self, *args, **kwargs)

        if inspect.isfunction(original):
            functools.update_wrapper(__init__, original)

    cls.__init__ = __init__
    return cls


def run_cell(function, filename, text, *args):
    """Run a notebook body cell, compiled as a function of its free names."""
    _register(filename, text)
    try:
        return function(*args)
    finally:
        _flush()


def batch_transform(body, batch_format, keep, filename, text):
    """A map_batches function from a %%ray_data body; with `keep` the body gives a row mask."""

    def transform(batch):
        _register(filename, text)
        result = body(batch, batch) if batch_format == "pandas" else body(batch)
        return _keep(batch, result, batch_format) if keep else result

    transform.__name__ = transform.__qualname__ = "ray_data_transform"
    return transform


def _keep(batch, mask, batch_format):
    import numpy as np

    if hasattr(mask, "fillna"):  # a missing value in the mask drops the row
        mask = mask.fillna(False)
    mask = np.asarray(mask, dtype=bool)
    if batch_format == "pandas":
        return batch[mask]
    if batch_format == "pyarrow":
        return batch.filter(mask)
    return {name: column[mask] for name, column in batch.items()}
