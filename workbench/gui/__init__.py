"""The desktop app (Qt): the only package that imports PySide6, superqt or pyqtgraph."""

# Before anything calls into Qt: the PySide6 wheel leaks references to None/True/False.
from workbench.gui import refcounts as _refcounts  # noqa: E402,F401
