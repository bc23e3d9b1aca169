"""pytest plugin for run_seed_suite.sh: registers fsc's backends and lets
dogpile_filesystem's test modules import without its code.

Its test modules import dogpile_filesystem.registry and .backend at the top
for the tests that exercise its private classes (deselected by the script).
Those names resolve to empty modules here, so any remaining test that used
them would fail instead of silently testing dogpile_filesystem itself."""

import sys
import types
import unittest.mock

import fsc  # noqa: F401  registers fsc.filesystem and fsc.raw_filesystem

_seed = types.ModuleType("dogpile_filesystem")
for _name in ("registry", "backend", "utils"):
    _module = types.ModuleType("dogpile_filesystem." + _name)
    setattr(_seed, _name, _module)
    sys.modules[_module.__name__] = _module
sys.modules["dogpile_filesystem"] = _seed

# The seed's tests import the mock backport; unittest.mock is the same API.
try:
    import mock  # noqa: F401
except ImportError:
    sys.modules["mock"] = unittest.mock
