"""The README's examples run as shown: each Python block whose printed
results are written beside it in comments prints them."""

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def printed_in_comments(code):
    """What the block says it prints: `print(...)  # <text>` lines."""
    return [m.group(1) for m in re.finditer(r"^print\(.*\)  # (.+)$", code, re.M)]


# The Bidirectional example (the quickstart's first block trains 2,000-step
# sequences: test_workflow.py covers what it shows).
@pytest.mark.parametrize("code", [b for b in BLOCKS if "Bidirectional" in b], ids=["bidirectional"])
def test_readme_example_prints_what_it_says(code):
    expected = printed_in_comments(code)
    assert expected, "the example says nothing it prints"
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, str(README), "exec"), {})
    lines = output.getvalue().splitlines()
    for line in expected:
        assert line in lines, (line, lines)
