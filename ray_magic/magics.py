"""RayMagics: the magic methods (thin: parse, hand off, bind names) and their settings."""
from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Float, Unicode

from . import session, tasks
from .cells import CellError, cell_filename, parse_cell
from .cellview import cell_views
from .data import preview_args, transform_args
from .options import (
    TASK_OPTION_NAMES,
    count,
    json_object,
    parse_line,
    ray_options,
    resource_options,
    retries,
    seconds,
    task_options,
)
from .output import OutputRouter, print_to_terminal
from .refresher import refresher
from .tracker import tracker

_CELL_MAGICS = ("ray_task", "ray_actor")


def _parse(magic, line: str):
    """Parse a magic's line; a mistake is a one-line UsageError naming the magic."""
    prefix = "%%" if magic.__name__ in _CELL_MAGICS else "%"
    return parse_line(magic, line, f"{prefix}{magic.__name__}")


def _no_arguments(magic: str, line: str) -> None:
    if line.strip():
        raise UsageError(f"%{magic} takes no arguments, got {line.strip()!r}")


@magics_class
class RayMagics(Magics):
    """Magics that make Ray feel native in IPython and Jupyter."""

    auto_init = Bool(True, help="Start a local Ray when a magic needs one and none is running.").tag(config=True)
    address = Unicode(None, allow_none=True, help="Default address for %ray_init (auto, HOST:PORT, ray://...).").tag(
        config=True
    )
    refresh_interval = Float(0.5, help="Seconds between refreshes of the panel and cell views.").tag(config=True)
    show_panel = Bool(True, help="Show the live panel on %ray_init.").tag(config=True)
    cell_progress = Bool(True, help="Show progress and prints under each cell that submits tasks.").tag(config=True)
    use_widgets = Bool(
        None, allow_none=True, help="Draw with ipywidgets; None: only in a Jupyter kernel, text elsewhere."
    ).tag(config=True)

    def __init__(self, shell=None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.router = OutputRouter(self._deliver)
        self._announced_auto_init = False

    # --- plumbing shared by the magics -------------------------------------------------
    @property
    def widgets(self) -> bool:
        if self.use_widgets is not None:
            return self.use_widgets
        return getattr(self.shell, "kernel", None) is not None

    def current_cell(self) -> int | None:
        """The number of the cell now running (In[n]), as the frontend shows it."""
        # IPython 9 counts the cell before running it, IPython 8 after: the
        # running cell's ExecutionResult knows its own number in both.
        result = getattr(self.shell.displayhook, "exec_result", None)
        number = getattr(result, "execution_count", None)
        return number if number is not None else self.shell.execution_count

    def ensure_ray(self) -> None:
        """Connect if needed: a local Ray when auto_init is on (saying so), else an error."""
        if session.is_connected():
            self._attach()
            return
        if not self.auto_init:
            raise UsageError("Ray is not running: run %ray_init first (RayMagics.auto_init is off)")
        self._connect(self.address, {}, quiet=True)
        info = session.ray_module().cluster_resources()
        print(f"ray_magic: started a local Ray ({info.get('CPU', 0):g} CPUs); use %ray_init to choose options.")

    def _connect(self, address: str | None, options: dict, quiet: bool) -> dict:
        from .connect import ConnectError, connect

        try:
            info = connect(address, **options)
        except ConnectError as err:
            raise UsageError(f"%ray_init: {err}") from None
        self._attach()
        return info

    def _attach(self) -> None:
        """Make sure prints are routed and the refresher runs for the current connection."""
        key = session.connection_key()
        if key == tracker.connection and refresher.running and self.router.installed:
            return  # already attached to this Ray: every magic calls this, keep it cheap
        if tracker.connection not in (None, key):
            # Ray was shut down and started again without %ray_shutdown: the old
            # futures are gone with it, and polling them would fail on every tick.
            refresher.stop()
            tracker.reset()
            cell_views.reset()
        tracker.connection = key
        session._prepare_pickling()
        self.router.install()
        refresher.interval = self.refresh_interval
        refresher.start()

    def _on_submit(self, cell: int | None) -> None:
        self._show_view(cell)

    def _show_view(self, cell: int | None, prints_only: bool = False) -> None:
        """Show, once per cell, where its tasks' progress and prints appear."""
        if not self.cell_progress or cell_views.get(cell) is not None:
            return
        view, created = cell_views.create(cell, self.widgets, prints_only)
        if created and view.widget is not None:
            from IPython.display import display

            display(view)

    def _deliver(self, cell: int, text: str) -> None:
        view = cell_views.get(cell)
        if view is None or view.widget is None:
            print_to_terminal(cell, text)
        cell_views.deliver(cell, text)

    def _cell(self, cell: str, magic_line: str):
        try:
            return parse_cell(cell, cell_filename(self.current_cell()), magic_line=magic_line)
        except CellError as err:
            raise UsageError(str(err)) from None

    # --- connecting ----------------------------------------------------------------------
    @magic_arguments()
    @argument("--address", help="auto, HOST:PORT or ray://HOST:PORT; none starts a new local Ray.")
    @resource_options
    @argument("--namespace", help="Ray namespace for named actors.")
    @argument("--runtime-env", type=json_object, help="Ray runtime_env as JSON.")
    @argument("--object-store-memory", type=count, help="Bytes for the local object store.")
    @argument("--token-file", help="File with the cluster's auth token (default: RAY_AUTH_TOKEN, ~/.ray/auth_token).")
    @argument("--no-panel", action="store_true", help="Do not show the live panel.")
    @argument("--quiet", action="store_true", help="Print nothing on success.")
    @line_magic
    def ray_init(self, line: str = "") -> None:
        """Start a local Ray or connect to a running cluster, and show the live panel."""
        from .connect import ConnectError, validate_address

        args = _parse(self.ray_init, line)
        address = args.address if args.address is not None else self.address
        try:
            address = validate_address(address)
        except ConnectError as err:
            raise UsageError(f"%ray_init: {err}") from None
        if session.is_connected():
            here = session.ray_module().get_runtime_context().gcs_address
            if address not in (None, "auto", here) and not here.endswith(str(address).removeprefix("ray://")):
                raise UsageError(
                    f"%ray_init: already connected to {here}; run %ray_shutdown first to connect to {address}"
                )
            self._attach()
            if not args.quiet:
                print(f"Already connected to Ray at {here}; nothing changed.")
        else:
            options = {
                "num_cpus": args.num_cpus,
                "num_gpus": args.num_gpus,
                "namespace": args.namespace,
                "runtime_env": args.runtime_env,
                "object_store_memory": args.object_store_memory,
                "token_file": args.token_file,
            }
            info = self._connect(address, {k: v for k, v in options.items() if v is not None}, args.quiet)
            if not args.quiet:
                print(f"Connected to Ray {info.get('version', '')} at {info.get('address', '')}.")
        if not args.no_panel and self.show_panel:
            self._show_panel()

    def _show_panel(self) -> None:
        try:
            from .live_panel import show_panel
        except ImportError:  # the panel is optional while it is being built
            return
        show_panel(self)

    @line_magic
    def ray_panel(self, line: str = "") -> None:
        """Show the live panel (the same one each time): cluster, nodes, futures, actors, datasets."""
        _no_arguments("ray_panel", line)
        from .live_panel import show_panel

        show_panel(self)

    @line_magic
    def ray_shutdown(self, line: str = "") -> None:
        """Stop the panel's updates and shut Ray down. Safe to repeat."""
        _no_arguments("ray_shutdown", line)
        refresher.stop()
        self.router.uninstall()
        tracker.abandon()  # before Ray goes: pending refs must not outlive it
        if session.is_connected():
            session.ray_module().shutdown()
        refresher.notify_stopped()  # the panel now shows "not connected", with the last records

    # --- tasks ------------------------------------------------------------------------------
    @no_var_expand
    @magic_arguments(name="%ray_task")  # usage: %%ray_task
    @argument("name", nargs="?", help="Body cells: bind the future (or with --block the value) to NAME.")
    @task_options
    @argument("--label", help="Name of the cell's tasks in the panel and timeline.")
    @argument("--block", action="store_true", help="Body cells: wait, bind NAME to the value and show it.")
    @argument("--timeout", type=seconds, help="With --block: give up waiting after SECONDS.")
    @cell_magic
    def ray_task(self, line: str, cell: str) -> Any:
        """Turn the cell's functions into Ray remote functions, or run the cell itself as a task.

        A cell of only imports and function definitions defines remote functions
        (`f.remote(...)`); any other cell runs at once as one task that receives the
        notebook variables it reads (futures become dependencies) and returns its
        last expression.
        """
        __tracebackhide__ = True
        args = _parse(self.ray_task, line)
        parsed = self._cell(cell, f"%%ray_task {line}")
        options = ray_options(args, TASK_OPTION_NAMES)
        ns = self.shell.user_ns
        if parsed.shape == "definitions":
            for flag in ("name", "block", "timeout", "label"):
                if getattr(args, flag):
                    raise UsageError(
                        f"%%ray_task: {'NAME' if flag == 'name' else '--' + flag} is only for a body cell; "
                        "a cell of function definitions binds each function under its own name"
                    )
            self.ensure_ray()
            tasks.define_functions(parsed, ns, options)
            return None
        if args.timeout is not None and not args.block:
            raise UsageError("%%ray_task: --timeout goes with --block")
        number = self.current_cell()
        try:
            tasks.body_arguments(parsed, ns)  # a missing name fails before Ray starts
        except CellError as err:
            raise UsageError(str(err)) from None
        self.ensure_ray()
        label = args.label or f"cell {number}"
        if args.block:
            self._show_view(number, prints_only=True)
        try:
            ref, record = tasks.submit_body(parsed, ns, options, label, number)
        except CellError as err:
            raise UsageError(str(err)) from None
        view = cell_views.get(number)
        if view is not None and not args.block:
            view.watch(ref, record)
        if not args.block:
            if args.name:
                ns[args.name] = ref
            return None
        value = self._wait_or_usage([ref], args.timeout)[0]
        if args.name:
            ns[args.name] = value
        return value

    def _wait_or_usage(self, refs: list, timeout: float | None) -> list:
        try:
            return session.wait(refs, timeout)
        except TimeoutError as err:
            raise UsageError(str(err)) from None

    # --- actors ------------------------------------------------------------------------------
    @no_var_expand
    @magic_arguments(name="%ray_actor")  # usage: %%ray_actor
    @argument("variable", nargs="?", metavar="NAME", help="Also create one actor with no arguments, bound to NAME.")
    @resource_options
    @argument("--max-restarts", type=retries, help="Restarts after the actor's process dies (-1: forever).")
    @argument("--max-task-retries", type=retries, help="Retries of a call when the actor dies (-1: forever).")
    @argument("--max-concurrency", type=count, help="Calls the actor may run at once.")
    @argument("--name", help="Register the actor under this Ray name (with NAME).")
    @argument("--namespace", help="Ray namespace of the named actor.")
    @argument("--lifetime", choices=["detached"], help="detached: the actor outlives this notebook.")
    @argument("--get-if-exists", action="store_true", help="With --name: reuse the actor if it exists.")
    @cell_magic
    def ray_actor(self, line: str, cell: str) -> None:
        """Turn the cell's one class into a Ray actor class; with NAME also create an actor."""
        args = _parse(self.ray_actor, line)
        parsed = self._cell(cell, f"%%ray_actor {line}")
        class_options = ray_options(args, ("num_cpus", "num_gpus", "max_restarts", "max_task_retries",
                                           "max_concurrency"))
        instance_options = ray_options(args, ("name", "namespace", "lifetime", "get_if_exists"))
        if instance_options and not args.variable:
            raise UsageError("%%ray_actor: --name, --namespace, --lifetime and --get-if-exists need NAME")
        try:
            self.ensure_ray()
            class_name = tasks.define_actor(parsed, self.shell.user_ns, class_options)
        except CellError as err:
            raise UsageError(f"%%ray_actor: {err}") from None
        if args.variable:
            actor_class = self.shell.user_ns[class_name]
            maker = actor_class.options(**instance_options) if instance_options else actor_class
            self.shell.user_ns[args.variable] = maker.remote()

    @magic_arguments()
    @argument("name", help="The variable holding the actor handle.")
    @argument("--no-restart", action="store_true", help="Do not restart the actor even if it may restart.")
    @line_magic
    def ray_kill(self, line: str) -> None:
        """Kill an actor (as ray.kill)."""
        args = _parse(self.ray_kill, line)
        handle = self._lookup(args.name)
        ray = session.ray_module()
        if not isinstance(handle, ray.actor.ActorHandle):
            raise UsageError(f"%ray_kill: {args.name} has type {type(handle).__name__}, not an actor handle")
        record = tracker.actors.get(handle._actor_id.hex())
        if record is not None:
            tracker.update_actor_states()
            if record.state == "dead":
                raise UsageError(f"%ray_kill: actor {args.name} is already dead")
        session.kill(handle, no_restart=args.no_restart)

    # --- futures ------------------------------------------------------------------------------
    def _lookup(self, name: str) -> Any:
        if name not in self.shell.user_ns:
            raise UsageError(f"name {name!r} is not defined in the notebook")
        return self.shell.user_ns[name]

    def _refs(self, magic: str, name: str) -> tuple[list, bool]:
        """The ObjectRefs a variable holds (one, or a list), and whether it was a list."""
        ray = session.ray_module()
        value = self._lookup(name)
        if isinstance(value, ray.ObjectRef):
            return [value], False
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, ray.ObjectRef) for v in value):
            return list(value), True
        raise UsageError(f"%{magic}: {name} has type {type(value).__name__}, not a future (ObjectRef) or list of them")

    @magic_arguments()
    @argument("names", nargs="+", help="Variables holding futures (or lists of futures).")
    @argument("--timeout", type=seconds, help="Give up after SECONDS.")
    @line_magic
    def ray_get(self, line: str) -> Any:
        """Wait for futures, with progress in the panel, and bind each name to its value."""
        args = _parse(self.ray_get, line)
        self.ensure_ray()
        found = [(name, *self._refs("ray_get", name)) for name in args.names]
        refs = [ref for _, group, _ in found for ref in group]
        values = self._wait_or_usage(refs, args.timeout)
        position = 0
        for name, group, is_list in found:
            chunk = values[position: position + len(group)]
            position += len(group)
            self.shell.user_ns[name] = chunk if is_list else chunk[0]
        if len(found) == 1:
            return self.shell.user_ns[found[0][0]]
        return None

    @magic_arguments()
    @argument("name", help="Variable holding a future (or a list of futures).")
    @argument("--force", action="store_true", help="Kill the worker running it (not for actor calls).")
    @line_magic
    def ray_cancel(self, line: str) -> None:
        """Cancel a pending task (a running one is force-cancelled if it has not stopped within ~2 s)."""
        args = _parse(self.ray_cancel, line)
        self.ensure_ray()
        refs, _ = self._refs("ray_cancel", args.name)
        cancelled, forced = session.cancel(refs, force=args.force)
        if not cancelled:
            raise UsageError(f"%ray_cancel: {args.name} is already done; nothing to cancel")
        print(f"Cancelled {cancelled} task(s)" + (f", {forced} forcibly" if forced else "") + ".")

    # --- timeline ------------------------------------------------------------------------------
    @magic_arguments()
    @argument("--cell", type=count, help="Only the tasks that cell N submitted.")
    @argument("--last", type=seconds, help="Only the last SECONDS.")
    @line_magic
    def ray_timeline(self, line: str = "") -> Any:
        """Draw the notebook's tasks and actor calls as bars on one row per worker, over time."""
        from .timeline import build_timeline, fetch_events

        args = _parse(self.ray_timeline, line)
        self.ensure_ray()
        job_id = session.ray_module().get_runtime_context().get_job_id()
        return build_timeline(fetch_events(), cell=args.cell, last_seconds=args.last, job_id=job_id)

    # --- data ------------------------------------------------------------------------------
    @no_var_expand
    @line_cell_magic
    def ray_data(self, line: str, cell: str | None = None) -> Any:
        """%ray_data EXPR previews a Dataset; %%ray_data [OUT =] IN turns the cell into a transform."""
        from . import data

        self_ns = self.shell.user_ns
        if cell is None:
            return data.preview_magic(self, line, self_ns)
        return data.transform_magic(self, line, cell, self_ns)

    # `%ray_data?` shows the usage of both forms, every option with its help.
    ray_data.__doc__ = f"{ray_data.__doc__}\n\n{preview_args.__doc__}\n{transform_args.__doc__}"
