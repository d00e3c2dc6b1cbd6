"""Qt lives only in workbench.gui: importing everything else must not load Qt."""

import pkgutil
import subprocess
import sys

import workbench

QT_PREFIXES = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy", "superqt", "pyqtgraph")


def _non_gui_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if info.name.startswith("workbench.gui") or info.name == "workbench.__main__":
            continue
        names.append(info.name)
    return names


def test_non_gui_package_never_loads_qt():
    modules = _non_gui_modules()
    assert "workbench.masks" in modules and "workbench.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {QT_PREFIXES!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"Qt modules loaded outside workbench.gui: {out.stdout.strip()}"
