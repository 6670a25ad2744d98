"""Makes packages look uninstalled in one child process (put this directory on PYTHONPATH).

Python imports `sitecustomize` at start-up. For each name in EHA_TEST_UNINSTALLED (comma-separated, e.g.
`moto,agent.sandbox`), importing it or anything under it raises the ModuleNotFoundError an absent package gives
("No module named 'moto'", `name` set to it), from a finder placed before every other one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

_HIDDEN = tuple(name.strip() for name in os.environ.get("EHA_TEST_UNINSTALLED", "").split(",") if name.strip())


class _Uninstalled(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        hidden = next((name for name in _HIDDEN if fullname == name or fullname.startswith(name + ".")), None)
        if hidden is not None:
            raise ModuleNotFoundError(f"No module named {hidden!r}", name=hidden)
        return None


if _HIDDEN:
    sys.meta_path.insert(0, _Uninstalled())
