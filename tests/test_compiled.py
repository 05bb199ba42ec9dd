"""The hot path may run compiled (setup.py builds it with mypyc) or as plain Python; both must be current.

A compiled module is a `.so` beside its `.py` source, and Python imports it in
place of the source. Editing the source without rebuilding would silently keep
running the old code, so these tests fail when a compiled module is older than
its source, or when only some of the modules are compiled.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REBUILD = "rebuild with `.venv/bin/pip install -e .` (or remove the .so files: SMBWATCH_PURE_PYTHON=1 pip install -e .)"


def compiled_module_names() -> list[str]:
    """The modules setup.py hands to mypyc, read from its COMPILED_MODULES list."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "COMPILED_MODULES" for target in node.targets
        ):
            paths = ast.literal_eval(node.value)
            return [path.removesuffix(".py").replace("/", ".") for path in paths]
    raise AssertionError("setup.py has no COMPILED_MODULES list")


def test_setup_lists_the_hot_path() -> None:
    assert "monitor.tcp.flows" in compiled_module_names()
    assert "dissectors.stream" in compiled_module_names()


def test_compiled_modules_are_not_older_than_their_sources() -> None:
    for name in compiled_module_names():
        module = importlib.import_module(name)
        loaded = Path(module.__file__ or "")
        if loaded.suffix == ".py":
            continue
        source = REPO / (name.replace(".", "/") + ".py")
        assert loaded.stat().st_mtime >= source.stat().st_mtime, f"{loaded.name} is older than {source.name}: {REBUILD}"


def test_the_hot_path_is_compiled_all_or_nothing() -> None:
    loaded = {name: Path(importlib.import_module(name).__file__ or "").suffix for name in compiled_module_names()}
    compiled = sorted(name for name, suffix in loaded.items() if suffix != ".py")
    assert compiled in ([], sorted(loaded)), f"only {compiled} are compiled: {REBUILD}"
