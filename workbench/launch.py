"""Starting the desktop app from the command line, with a clear message when it cannot.

Kept outside ``workbench.gui`` so the checks for a display and for the system libraries
of Qt's xcb platform plugin happen before Qt is imported (Qt aborts the process with a
C-level message when either is missing).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from workbench.errors import WorkbenchError


def default_project_path() -> Path:
    """The bundled sample project: ``sample_data/`` of the source checkout, or a copy
    generated once into the user's data folder when the package was installed without it."""
    bundled = Path(__file__).resolve().parent.parent / "sample_data"
    if (bundled / "workbench.json").is_file():
        return bundled
    from workbench.project.location import user_state_home
    from workbench.sample_data import generate

    generated = user_state_home() / "sample_data"
    if not (generated / "workbench.json").is_file():
        generate(generated, seed=0, overwrite=True)
    return generated


def display_problem() -> str | None:
    """Why no window can be shown here, or None when one can."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc", "eglfs", "linuxfb")):
        return None
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ("no display found (DISPLAY and WAYLAND_DISPLAY are unset). The desktop app needs a "
                "screen; run it in a desktop session or with X forwarding, or use the headless "
                "commands (workbench --help).")
    return None


# Shared libraries Qt 6's xcb platform plugin (libqxcb.so + libQt6XcbQpa.so.6) loads
# from the system, and the Debian/Ubuntu package of each. PySide6 wheels bundle Qt
# itself but not these; since Qt 6.5 libxcb-cursor0 is the one most often missing.
# The plugin's own ELF dependency list is read as well (``_plugin_needs``), so a library
# a newer Qt adds is still found; this table names its package.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}
_ALWAYS_CHECKED = ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-image.so.0",
                   "libxcb-keysyms.so.1", "libxcb-randr.so.0", "libxcb-render-util.so.0",
                   "libxcb-shape.so.0", "libxcb-xkb.so.1", "libxkbcommon-x11.so.0")


def _would_use_xcb() -> bool:
    """Whether Qt will pick its xcb plugin: Linux, QT_QPA_PLATFORM unset or xcb, not Wayland."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if platform:
        return platform == "xcb"
    wayland = os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland"
    return not wayland


def _qt_folder() -> Path | None:
    """PySide6's bundled Qt folder (plugins/, lib/), found without importing Qt."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "Qt"
    return folder if folder.is_dir() else None


def _elf_needed(path: Path) -> list[str]:
    """The DT_NEEDED entries (sonames) of a 64-bit little-endian ELF file; [] if unreadable."""
    import struct

    try:
        data = path.read_bytes()
    except OSError:
        return []
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    try:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        for sh in sections:
            if sh[1] != 6:  # SHT_DYNAMIC
                continue
            strtab = sections[sh[6]]  # sh_link: the dynamic string table
            str_off = strtab[4]
            needed = []
            for off in range(sh[4], sh[4] + sh[5], 16):
                tag, val = struct.unpack_from("<qQ", data, off)
                if tag == 0:
                    break
                if tag == 1:  # DT_NEEDED
                    end = data.index(b"\0", str_off + val)
                    needed.append(data[str_off + val:end].decode("ascii", "replace"))
            return needed
    except (struct.error, IndexError, ValueError):
        return []
    return []


def _plugin_needs(qt: Path | None) -> list[str]:
    """System libraries the xcb plugin links against (those Qt does not bundle)."""
    if qt is None:
        return []
    names: list[str] = []
    for binary in (qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"):
        for soname in _elf_needed(binary):
            if soname not in names and not (qt / "lib" / soname).exists():
                names.append(soname)
    return names


def _loads(soname: str) -> bool:
    """Whether the dynamic linker finds and loads ``soname`` (as Qt's plugin loader would)."""
    import ctypes

    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


_BASE_LIBRARIES = ("libc.so", "libm.so", "libdl.so", "libpthread.so", "librt.so", "ld-linux",
                   "libstdc++.so", "libgcc_s.so")


def missing_platform_libraries(load: Callable[[str], bool] | None = None) -> list[str]:
    """Sonames the Qt xcb plugin needs that cannot be loaded here ([] when not using xcb)."""
    if not _would_use_xcb():
        return []
    load = load or _loads
    candidates = list(_ALWAYS_CHECKED)
    for soname in _plugin_needs(_qt_folder()):
        if soname not in candidates and not soname.startswith(_BASE_LIBRARIES):
            candidates.append(soname)
    return [soname for soname in candidates if not load(soname)]


def platform_library_problem(load: Callable[[str], bool] | None = None) -> str | None:
    """What to install when Qt's xcb plugin would fail to load, or None when it can."""
    missing = missing_platform_libraries(load)
    if not missing:
        return None
    packages = " ".join(dict.fromkeys(XCB_LIBRARIES.get(s, s) for s in missing))
    them = "them" if len(missing) > 1 else "it"
    return (f"the desktop app cannot start: Qt's xcb platform plugin needs {', '.join(missing)}, "
            f"which this system lacks. On Debian/Ubuntu install {them} with: sudo apt install "
            f"{packages} (other systems: the package that provides each library). The headless "
            "commands work without {them} (workbench --help).".replace("{them}", them))


def launch_gui(path: str | None, state_dir: str | None = None) -> int:
    """Open the main window on ``path`` (default: the sample project) and run Qt."""
    problem = display_problem() or platform_library_problem()
    if problem:
        raise WorkbenchError(problem)
    target = Path(path) if path else default_project_path()
    if not target.exists():
        raise WorkbenchError("no such folder", target)
    from workbench.gui.app import run_app

    return run_app(target, state_dir=Path(state_dir) if state_dir else None)
