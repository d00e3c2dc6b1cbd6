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


REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def _lint_imports(root) -> subprocess.CompletedProcess:
    """import-linter's contracts of pyproject.toml, run on the package under ``root``."""
    import os

    code = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports())"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_layer_contracts_hold():
    out = _lint_imports(REPO)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "2 kept, 0 broken" in out.stdout


def test_layer_contracts_catch_an_upward_import(tmp_path):
    # The same contracts on a copy with one import that goes up a layer: project -> workflows.
    import shutil

    shutil.copytree(REPO / "workbench", tmp_path / "workbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "workbench" / "project" / "upward.py").write_text(
        "def f():\n    from workbench.workflows import train_project\n    return train_project\n")
    out = _lint_imports(tmp_path)
    assert out.returncode != 0
    assert "workbench.project.upward -> workbench.workflows" in out.stdout
