"""The compiled cffi extension (csrc/, built by CMakeLists.txt).  Every other
module reaches ``ffi`` and ``lib`` through this one, so that the layers test
(tests/py/test_layers.py) can hold the extension to ``polroute._core``."""

from polroute._polroute_cffi import ffi, lib

__all__ = ["ffi", "lib"]
