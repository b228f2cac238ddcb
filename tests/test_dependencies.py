"""Every third-party module lumos imports is a base dependency, so `make demo` (a plain
`pip install -e .`, no dev extra) runs every path of the package."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "skimage": "scikit-image", "PIL": "pillow"}


def _imported_modules() -> dict[str, str]:
    """Top-level module name -> one file importing it, over lumos/**/*.py."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "lumos").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_a_base_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    third_party = {
        name: where
        for name, where in _imported_modules().items()
        if name not in sys.stdlib_module_names and name not in ("lumos", "__future__")
    }
    assert {"numpy", "torch", "pandas"} <= set(third_party)  # the scan sees real imports
    missing = {
        name: where
        for name, where in third_party.items()
        if DISTRIBUTION.get(name, name).lower() not in base
    }
    assert not missing, f"imported by lumos but not in [project] dependencies: {missing}"
