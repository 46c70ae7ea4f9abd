"""The README's Python quick start runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_python_quick_start_runs(capsys):
    text = README.read_text(encoding="utf-8")
    code = re.search(r"## Python quick start\n\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, str(README), "exec"), {})
    assert "expected 3 columns" in capsys.readouterr().out
