"""Cell analysis without Ray: shape, free names, last expression, errors."""
import sys

import pytest

from ray_magic.cells import BODY, DEFINITIONS, CellError, compile_body, parse_cell, single_class


def test_definitions_shape_needs_only_imports_functions_and_docstrings():
    source = '"""doc"""\nimport time\nfrom os import path\n\ndef f(x):\n    return x\n@deco\ndef g():\n    pass\n'
    cell = parse_cell(source)
    assert cell.shape == DEFINITIONS
    assert cell.functions == ["f", "g"]


@pytest.mark.parametrize("source", ["x = 1\ndef f():\n    pass", "def f():\n    pass\nf()", "import os\nos.getcwd()",
                                    "class A:\n    pass\ndef f():\n    pass"])
def test_anything_else_is_a_body(source):
    assert parse_cell(source).shape == BODY


@pytest.mark.parametrize(
    "source, free",
    [
        ("x + y", ["x", "y"]),
        ("x = 1\nx + y", ["y"]),
        ("x = x + 1", ["x"]),
        ("total += 1", ["total"]),
        ("[a * b for a in data]", ["b", "data"]),
        ("def g():\n    return helper(z)\nz = 3\ng()", ["helper"]),
        ("import numpy as np\nnp.dot(a, a)", ["a"]),
        ("for i in range(n):\n    s = i\ns", ["n", "range"]),
        ("lambda q=default: q + other", ["default", "other"]),
        ("class A(Base):\n    k = value\nA", ["Base", "value"]),
        ("multiply_matrices(x_id, y_id)", ["multiply_matrices", "x_id", "y_id"]),
    ],
)
def test_free_names_are_what_the_cell_reads_before_binding(source, free):
    assert parse_cell(source).free == sorted(free)


def test_body_function_returns_last_expression_and_keeps_assignments_local():
    cell = parse_cell("y = x * 2\ny + 1")
    function = compile_body(cell, ["x"])
    assert function(20) == 41
    assert function.__code__.co_varnames[:2] == ("x", "y")


def test_a_lone_string_is_a_body_that_returns_it():
    cell = parse_cell('"just a string"')
    assert cell.shape == BODY and compile_body(cell, [])() == "just a string"


def test_body_without_final_expression_returns_none():
    assert compile_body(parse_cell("y = x"), ["x"])(1) is None


def test_body_lines_are_cell_lines_counting_the_magic_line():
    cell = parse_cell("a = 1\nraise ValueError('boom')", "<t-lines>", magic_line="%%ray_task")
    function = compile_body(cell, [])
    try:
        function()
    except ValueError:
        tb = sys.exc_info()[2]
        while tb.tb_next:
            tb = tb.tb_next
        assert tb.tb_lineno == 3
        import linecache

        assert linecache.getline(cell.filename, 3).strip() == "raise ValueError('boom')"
    else:
        pytest.fail("no error raised")


@pytest.mark.parametrize(
    "source, message",
    [
        ("", "empty"),
        ("   \n# only a comment\n", "empty"),
        ("x = (1,\ny = 2", "line 2"),
        ("a = 1\nb = = 2", "line 3"),
    ],
)
def test_bad_cells_are_one_line_errors(source, message):
    with pytest.raises(CellError) as err:
        parse_cell(source)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_second_text_under_the_same_name_gets_its_own_filename():
    first = parse_cell("1 + 1", "<ray_magic In[99]>", magic_line="%%x")
    second = parse_cell("2 + 2", "<ray_magic In[99]>", magic_line="%%x")
    again = parse_cell("1 + 1", "<ray_magic In[99]>", magic_line="%%x")
    assert first.filename != second.filename
    assert again.filename == first.filename


@pytest.mark.parametrize(
    "source, found", [("def f():\n    pass", "found 0"), ("class A:\n    pass\nclass B:\n    pass", "found 2: A, B")]
)
def test_actor_cells_need_exactly_one_class(source, found):
    with pytest.raises(CellError, match=found):
        single_class(parse_cell(source))


def test_cell_analysis_imports_no_ray():
    import subprocess

    code = "import sys, ray_magic.cells as c; c.parse_cell('x+1'); print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
