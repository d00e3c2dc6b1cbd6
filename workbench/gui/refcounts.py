"""Workaround: the installed PySide6 (6.12) drops references to None, True and False.

On Python 3.11 every PySide6 call that returns ``None`` (``update()``, ``setPen()``,
``drawImage()`` ...) or a bool (``Signal.emit()``) decrements the singleton's reference
count without having incremented it: the binary assumes Python 3.12+, where these
objects are immortal and their counts are never checked. After a few thousand calls
(one brush drag) CPython aborts with "Fatal Python error: none_dealloc". We do what
3.12 does: give the three singletons a reference count no program can exhaust. They
are static objects that CPython never frees, so nothing else changes.
"""

from __future__ import annotations

import ctypes
import sys

_BOOST = 1 << 40  # 3.12 marks immortals with 2**32-1; a leak of 1 per call never reaches this
_done = False


def protect_singletons() -> bool:
    """Make None, True and False effectively immortal on CPython < 3.12; True if applied."""
    global _done
    if _done or sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if hasattr(sys, "gettotalrefcount"):  # debug builds may put other fields first
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every PyObject in release builds.
        ctypes.c_ssize_t.from_address(id(obj)).value += _BOOST
    _done = True
    return True


protect_singletons()
