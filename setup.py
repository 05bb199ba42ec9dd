"""Builds the per-packet hot path as C extensions with mypyc, when it can; plain Python otherwise.

The sources stay ordinary type-annotated Python: mypyc compiles them to C
extension modules (`.so` files placed beside the `.py` files, which Python
then imports in their place). Everything else about the package is in
pyproject.toml.

The build falls back to the uncompiled package, with a warning, when
- `SMBWATCH_PURE_PYTHON=1` is set (what tests of the uncompiled mode use),
- mypyc cannot be imported (e.g. `pip install --no-build-isolation` without mypy),
- mypyc refuses the sources (a type error in a compiled module or its imports),
- there is no working C compiler or no Python headers.
A partial build is never kept: the compiled modules share one support library,
so either all of them are built or none is.
"""

from __future__ import annotations

import glob
import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The per-packet and per-message code (../shared/DESIGN.md sections 1-2); see bench/README.md
# for what compiling them buys. Modules that only run once per connection stay interpreted.
COMPILED_MODULES = [
    "monitor/input/decode.py",
    "monitor/tcp/flows.py",
    "monitor/tcp/fastpath.py",
    "monitor/tcp/scan_probation.py",
    "monitor/input/pcap_records.py",
    "dissectors/stream.py",
    "dissectors/netbios.py",
    "dissectors/smb2/message.py",
    "dissectors/smb1/message.py",
]
# The support library all compiled modules share (a top-level extension module; an editable
# install maps it like the packages). Set so that the name is stable across builds.
GROUP_NAME = "smbwatch_hotpath"


def _warn(message: str) -> None:
    print(f"smbwatch: {message}; the package runs as plain Python (slower).", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """Builds the compiled modules if the compiler cooperates; otherwise leaves none of them behind."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler, no Python.h, a compiler error: the Python sources remain
            _warn(f"compiling the hot path failed ({error})")
            self._remove_built()

    def _remove_built(self) -> None:
        for extension in self.extensions:
            for path in {self.get_ext_fullpath(extension.name), self._inplace_path(extension.name)}:
                if os.path.exists(path):
                    os.remove(path)

    def _inplace_path(self, name: str) -> str:
        inplace, self.inplace = self.inplace, True
        try:
            return self.get_ext_fullpath(name)
        finally:
            self.inplace = inplace


def remove_stale_modules() -> None:
    """Delete compiled modules an earlier build left beside the sources: Python would import them
    instead of the (possibly newer) `.py` files."""
    root = os.path.dirname(os.path.abspath(__file__))
    stems = [path[: -len(".py")] for path in COMPILED_MODULES] + [GROUP_NAME.replace(".", "/") + "__mypyc"]
    for stem in stems:
        for path in glob.glob(os.path.join(root, stem + ".*.so")) + glob.glob(os.path.join(root, stem + ".*.pyd")):
            os.remove(path)


def compiled_extensions() -> list[Any]:
    if os.environ.get("SMBWATCH_PURE_PYTHON"):
        remove_stale_modules()
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not available")
        remove_stale_modules()
        return []
    try:
        return mypycify(COMPILED_MODULES, opt_level="3", group_name=GROUP_NAME)
    except (Exception, SystemExit) as error:  # mypyc exits on type errors
        _warn(f"mypyc could not compile the hot path ({error})")
        remove_stale_modules()
        return []


setup(ext_modules=compiled_extensions(), cmdclass={"build_ext": OptionalBuildExt})
