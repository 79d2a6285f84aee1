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
    if not tree.body:
        raise CellError("the cell is empty: it has only comments")
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
    order = _TopLevelNames()
    for stmt in tree.body:
        order.visit(stmt)
    free = {name for name, first in order.first.items() if first == "load"}
    free |= {name for name in _globals_read_in_nested(top) if name not in bound_top}
    return sorted(free)


def _globals_read_in_nested(table: symtable.SymbolTable) -> set[str]:
    names: set[str] = set()
    for child in table.get_children():
        for sym in child.get_symbols():
            if sym.is_referenced() and sym.is_global():
                names.add(sym.get_name())
        names |= _globals_read_in_nested(child)
    return names


class _TopLevelNames(ast.NodeVisitor):
    """Records, in evaluation order, whether each top-level name is first loaded or stored.

    Nested function, lambda and class bodies are skipped: they run later, in
    their own scope (symtable covers what they read from the cell's globals).
    """

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    def _event(self, name: str, kind: str) -> None:
        self.first.setdefault(name, kind)

    def visit_Name(self, node: ast.Name) -> None:
        self._event(node.id, "load" if isinstance(node.ctx, ast.Load) else "store")

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)  # the value is evaluated before the targets are bound
        for target in node.targets:
            self.visit(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._event(node.target.id, "load")
        self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        # Decorators, defaults and bases run now; the body runs later.
        for expr in node.decorator_list:
            self.visit(expr)
        if isinstance(node, ast.ClassDef):
            for expr in [*node.bases, *[k.value for k in node.keywords]]:
                self.visit(expr)
        else:
            for expr in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
                self.visit(expr)
        self._event(node.name, "store")

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
            self._event((alias.asname or alias.name).split(".")[0], "store")

    visit_ImportFrom = visit_Import


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
    line = _top_level_yield(cell.tree)
    if line is not None:  # as a function it would be a generator: nothing would run
        raise CellError(f"syntax error on line {line} of the cell: 'yield' outside function")
    module = body_to_function(cell, params, name)
    try:
        code = compile(module, cell.filename, "exec")
    except SyntaxError as err:  # e.g. `return` outside a function is fine here, but `yield` is not
        raise CellError(f"syntax error on line {err.lineno} of the cell: {err.msg}") from None
    # A module name that cannot be imported makes cloudpickle send the function by value.
    namespace: dict = {"__name__": "__ray_magic_cell__", "__builtins__": builtins}
    exec(code, namespace)
    return namespace[name]


def _top_level_yield(node: ast.AST) -> int | None:
    """The line of a `yield` that is not inside a function or class, or None."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Yield, ast.YieldFrom)):
            return child.lineno
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        line = _top_level_yield(child)
        if line is not None:
            return line
    return None


def single_class(cell: Cell) -> str:
    """The one class an actor cell defines, or a CellError."""
    if len(cell.classes) != 1:
        found = f"found {len(cell.classes)}" + (f": {', '.join(cell.classes)}" if cell.classes else "")
        raise CellError(f"an actor cell must define exactly one class ({found})")
    return cell.classes[0]
