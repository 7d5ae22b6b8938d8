"""Every environment variable the program reads, named once (core.native reads them)."""

from __future__ import annotations

NATIVE_ARCH = "CHARMLP_NATIVE_ARCH"  # the -march the compiled steps are built for (default native)
CXX = "CXX"  # the C++ compiler to build them with
XDG_CACHE_HOME = "XDG_CACHE_HOME"  # where built libraries and calibrations are kept
