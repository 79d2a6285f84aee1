"""Option groups shared by several magics, and the argument types they use."""
from __future__ import annotations

import argparse
import json

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument
from IPython.utils.process import arg_split


def parse_line(magic, line: str, label: str, keep_quotes: bool = False) -> argparse.Namespace:
    """Parse a magic's line as a shell would: quotes group words and are removed.

    IPython's own parse_argstring keeps the quotes (`--label 'a b'` would give
    "'a b'"); `keep_quotes` keeps them for a line that holds a Python expression.
    A mistake is a one-line UsageError that starts with the magic's name.
    """
    try:
        argv = arg_split(line or "", posix=not keep_quotes)
    except ValueError as err:  # an unclosed quote
        raise UsageError(f"{label}: {str(err).lower()} in {line!r}") from None
    try:
        return magic.parser.parse_args(argv)
    except UsageError as err:
        raise UsageError(f"{label}: {err}") from None


def count(text: str) -> int:
    """A whole number, zero or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got {value}")
    return value


def retries(text: str) -> int:
    """A whole number of retries; -1 means retry forever, as in Ray."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < -1:
        raise argparse.ArgumentTypeError(f"expected -1 (forever) or more, got {value}")
    return value


def amount(text: str) -> int | float:
    """A resource amount: zero or more, fractions allowed (0.5 CPUs)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"expected zero or more, got {text}")
    return int(value) if value.is_integer() else value


def seconds(text: str) -> float:
    value = amount(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {text}")
    return float(value)


def json_object(text: str) -> dict:
    """A JSON object, e.g. '{"pip": ["requests"]}'."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"bad JSON ({err.msg} at column {err.colno}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text}")
    return value


def resources_json(text: str) -> dict:
    value = json_object(text)
    for key, amount_ in value.items():
        if not isinstance(amount_, (int, float)) or isinstance(amount_, bool) or amount_ < 0:
            raise argparse.ArgumentTypeError(f"resource {key!r} needs a number of zero or more, got {amount_!r}")
    return value


def stack(*decorators):
    """Apply a group of argument decorators at once (shared by several magics)."""

    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


resource_options = stack(
    argument("--num-cpus", type=amount, help="CPUs each task or actor needs (Ray's num_cpus)."),
    argument("--num-gpus", type=amount, help="GPUs each task or actor needs (Ray's num_gpus)."),
)

task_options = stack(
    resource_options,
    argument("--memory", type=count, help="Bytes of memory each task needs, for scheduling."),
    argument("--resources", type=resources_json, help='Custom resources as JSON, e.g. \'{"TPU": 1}\'.'),
    argument("--max-retries", type=retries, help="Retries when the worker dies (-1: forever)."),
    argument("--retry-exceptions", action="store_true", help="Also retry when the task raises."),
    argument("--runtime-env", type=json_object, help="Ray runtime_env as JSON."),
)


def ray_options(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """The Ray options the user gave, under Ray's own names; unset ones left out."""
    options = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value is not False:
            options[name] = value
    return options


TASK_OPTION_NAMES = ("num_cpus", "num_gpus", "memory", "resources", "max_retries", "retry_exceptions", "runtime_env")
ACTOR_OPTION_NAMES = ("num_cpus", "num_gpus", "max_restarts", "max_task_retries", "max_concurrency",
                      "name", "namespace", "lifetime", "get_if_exists")
