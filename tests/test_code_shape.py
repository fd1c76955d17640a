"""The shape the code keeps, so a newcomer reads it straight through: no
module of the package or of the examples over 350 lines and no function over
60 (docstrings excluded), no edit of `sys.path` anywhere, and no function
of the package that takes the layer to read its settings."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 350, 60
LIMITED = ("keras_auxloss", "examples")
ALL_CODE = ("keras_auxloss", "examples", "benchmarks", "tests", "research", "docs")


def python_files(*folders):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def docstring_lines(tree: ast.AST) -> set[int]:
    """The line numbers of every docstring in `tree`."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(first: int, last: int, docstrings: set[int]) -> int:
    return sum(1 for line in range(first, last + 1) if line not in docstrings)


def test_count_excludes_docstrings_and_can_fail():
    source = 'def f():\n    """One\n    two."""\n' + "    x = 1\n" * 61
    tree = ast.parse(source)
    (function,) = tree.body
    assert code_lines(function.lineno, function.end_lineno, docstring_lines(tree)) == 62


@pytest.mark.parametrize(
    "path", list(python_files(*LIMITED)), ids=lambda p: str(p.relative_to(ROOT))
)
def test_module_and_functions_are_short(path):
    source = path.read_text()
    tree = ast.parse(source)
    docstrings = docstring_lines(tree)
    module = code_lines(1, len(source.splitlines()), docstrings)
    assert module <= MAX_MODULE_LINES, f"{path.name}: {module} lines without docstrings"
    long = [
        f"{node.name} ({length} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := code_lines(node.lineno, node.end_lineno, docstrings)) > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_sys_path_edits():
    edits = []
    for path in python_files(*ALL_CODE):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "path"
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                edits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not edits, f"sys.path used in {edits}"


# Functions that take a layer for what it is, not for its settings: the
# metric's name comes from the layer's name and class and its place among
# the model's layers (as Keras names layers); `fix_window_starts` sets what
# a test fixes.
TAKE_THE_LAYER_ITSELF = {
    "loss_tracker.py:direction",
    "loss_tracker.py:is_unnamed",
    "loss_tracker.py:metric_name",
    "testing.py:fix_window_starts",
}


def test_no_function_takes_the_layer():
    """A helper gets what it needs, not the layer to read settings from."""
    takers = []
    for path in python_files("keras_auxloss"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                names = [arg.arg for arg in node.args.args + node.args.kwonlyargs]
                where = f"{path.name}:{node.name}"
                if "layer" in names and where not in TAKE_THE_LAYER_ITSELF:
                    takers.append(where)
    assert not takers, f"functions taking the layer: {takers}"
