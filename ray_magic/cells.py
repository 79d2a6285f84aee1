"""Cell text -> shape, free names, last expression, functions and classes.

Pure analysis of a cell's source with `ast` and `symtable`: no Ray, no IPython.
Line numbers are reported relative to the whole cell as the user sees it, where
line 1 is the `%%magic` line itself, so the body starts at line 2.
"""
from __future__ import annotations

import ast
import builtins
import linecache
import symtable
from dataclasses import dataclass, field

DEFINITIONS = "definitions"
BODY = "body"

# The `%%magic ...` line precedes the body: body line k is cell line k + 1.
BODY_LINE_OFFSET = 1


class CellError(ValueError):
    """A user's mistake in a cell, reported as one line."""


@dataclass
class Cell:
    """A parsed cell: its source, AST (with cell line numbers) and analysis."""

    source: str
    tree: ast.Module
    filename: str
    shape: str
    functions: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    free: list[str] = field(default_factory=list)


def cell_filename(execution_count: int | None) -> str:
    """The pseudo file name under which a cell's code is compiled and cached."""
    return f"<ray_magic In[{execution_count if execution_count is not None else '?'}]>"


def parse_cell(source: str, filename: str = "<cell>", *, magic_line: str = "") -> Cell:
    """Parse a cell body; raise CellError for an empty cell or a syntax error."""
    if not source.strip():
        raise CellError("the cell is empty: write the code to run below the magic line")
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        line = (err.lineno or 1) + BODY_LINE_OFFSET
        raise CellError(f"syntax error on line {line} of the cell: {err.msg}") from None
    ast.increment_lineno(tree, BODY_LINE_OFFSET)
    statements = [s for s in tree.body if not _is_docstring(s)]
    if not statements:
        raise CellError("the cell has no code, only comments or a docstring")
    functions = [s.name for s in tree.body if isinstance(s, ast.FunctionDef)]
    classes = [s.name for s in tree.body if isinstance(s, ast.ClassDef)]
    shape = DEFINITIONS if functions and all(_is_definition(s) for s in tree.body) else BODY
    cell = Cell(source, tree, filename, shape, functions, classes)
    cell.free = free_names(source, tree)
    # The whole cell, magic line included, so tracebacks can show cell lines.
    text = (magic_line or "%%") + "\n" + source
    cell.filename = _unused_filename(filename, text)
    register_source(cell.filename, text)
    return cell


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _is_definition(stmt: ast.stmt) -> bool:
    return isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef)) or _is_docstring(stmt)


def _unused_filename(filename: str, text: str) -> str:
    """The filename, or a numbered variant if another text already uses it.

    Workers cache a cell's text by file name, so two texts must never share one
    (a shell that does not count cells, or a cell run twice with edits).
    """
    candidate, number = filename, 1
    while candidate in linecache.cache and "".join(linecache.cache[candidate][2]) != text:
        number += 1
        candidate = f"{filename[:-1]}.{number}>"
    return candidate


def register_source(filename: str, text: str) -> None:
    """Put a cell's text into linecache so tracebacks can show its lines."""
    lines = text.splitlines(True)
    # mtime None: linecache.checkcache never evicts the entry.
    linecache.cache[filename] = (len(text), None, lines, filename)


def free_names(source: str, tree: ast.Module) -> list[str]:
    """Names the cell reads that it has not bound before reading them.

    These are the notebook variables a body cell needs: a name counts when it is
    read at the top level before the cell assigns it, or read from a nested
    function or comprehension while the cell never assigns it at top level.
    """
    top = symtable.symtable(source, "<cell>", "exec")
    bound_top = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    candidates = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    candidates |= _globals_read_in_nested(top)
    first_store, first_load = _first_store_and_load(tree)
    free = []
    for name in sorted(candidates):
        if name not in bound_top:
            free.append(name)
        elif name in first_load and first_load[name] <= first_store.get(name, len(tree.body)):
            # Read in the statement that first binds it (x = x + 1) or before.
            free.append(name)
    return free


def _globals_read_in_nested(table: symtable.SymbolTable) -> set[str]:
    names: set[str] = set()
    for child in table.get_children():
        for sym in child.get_symbols():
            if sym.is_referenced() and sym.is_global():
                names.add(sym.get_name())
        names |= _globals_read_in_nested(child)
    return names


class _TopLevelNames(ast.NodeVisitor):
    """Collects the names loaded and stored by one statement at the cell's top level."""

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.stores: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        (self.loads if isinstance(node.ctx, ast.Load) else self.stores).add(node.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
        self.generic_visit(node)

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        # Decorators, defaults and bases run now; the body runs later.
        self.stores.add(node.name)
        for expr in node.decorator_list:
            self.visit(expr)
        if isinstance(node, ast.ClassDef):
            for expr in [*node.bases, *[k.value for k in node.keywords]]:
                self.visit(expr)
        else:
            for expr in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
                self.visit(expr)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in node.args.defaults:
            self.visit(expr)

    def _comprehension(self, node: ast.AST) -> None:
        # Only the first iterable is evaluated in the enclosing scope.
        self.visit(node.generators[0].iter)  # type: ignore[attr-defined]

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            self.stores.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import


def _first_store_and_load(tree: ast.Module) -> tuple[dict[str, int], dict[str, int]]:
    first_store: dict[str, int] = {}
    first_load: dict[str, int] = {}
    for index, stmt in enumerate(tree.body):
        visitor = _TopLevelNames()
        visitor.visit(stmt)
        for name in visitor.loads:
            first_load.setdefault(name, index)
        for name in visitor.stores:
            first_store.setdefault(name, index)
    return first_store, first_load


def missing_names(names: list[str], namespace: dict) -> list[str]:
    """The names that are neither in the namespace nor builtins."""
    return [n for n in names if n not in namespace and not hasattr(builtins, n)]


def body_to_function(cell: Cell, params: list[str], name: str = "cell") -> ast.Module:
    """Wrap a body cell as `def name(*params): <body>; return <last expression>`.

    The statements keep their cell line numbers, so a traceback from the worker
    points at the cell's own lines.
    """
    body = list(cell.tree.body)
    last = body[-1]
    if isinstance(last, ast.Expr):
        body[-1] = ast.copy_location(ast.Return(value=last.value), last)
    arguments = ast.arguments(
        posonlyargs=[], args=[ast.arg(arg=p) for p in params], kwonlyargs=[], kw_defaults=[], defaults=[]
    )
    func = ast.FunctionDef(name=name, args=arguments, body=body, decorator_list=[], returns=None)
    ast.copy_location(func, body[0])
    module = ast.Module(body=[func], type_ignores=[])
    ast.fix_missing_locations(module)
    return module


def compile_body(cell: Cell, params: list[str], name: str = "cell"):
    """Compile a body cell into a plain function of its free names."""
    module = body_to_function(cell, params, name)
    try:
        code = compile(module, cell.filename, "exec")
    except SyntaxError as err:  # e.g. `return` outside a function is fine here, but `yield` is not
        raise CellError(f"syntax error on line {err.lineno} of the cell: {err.msg}") from None
    # A module name that cannot be imported makes cloudpickle send the function by value.
    namespace: dict = {"__name__": "__ray_magic_cell__", "__builtins__": builtins}
    exec(code, namespace)
    return namespace[name]


def single_class(cell: Cell) -> str:
    """The one class an actor cell defines, or a CellError."""
    if len(cell.classes) != 1:
        found = f"found {len(cell.classes)}" + (f": {', '.join(cell.classes)}" if cell.classes else "")
        raise CellError(f"an actor cell must define exactly one class ({found})")
    return cell.classes[0]
