"""The desktop app (Qt): the only package that imports PySide6, superqt or pyqtgraph."""
