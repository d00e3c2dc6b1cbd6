"""Launching the app: a clear message without a display, and a sample project always found."""

import subprocess
import sys

from workbench import launch
from workbench.cli import main


def test_no_display_gives_a_clear_message_not_a_qt_abort(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(sys, "platform", "linux")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "no display found" in err and "Traceback" not in err


def test_no_display_from_the_real_console_script(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WORKBENCH_STATE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "workbench"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 2
    assert "no display found" in out.stderr and "Traceback" not in out.stderr


def test_missing_folder_is_named(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main([str(tmp_path / "nope")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err


def test_bundled_sample_project_is_found_in_the_checkout():
    path = launch.default_project_path()
    assert (path / "workbench.json").is_file()
    assert path.name == "sample_data"


def test_sample_project_is_generated_when_not_bundled(monkeypatch, tmp_path):
    # An installed wheel has no sample_data/ beside the package: generate it once.
    fake_pkg = tmp_path / "site" / "workbench"
    fake_pkg.mkdir(parents=True)
    monkeypatch.setattr(launch, "__file__", str(fake_pkg / "launch.py"))
    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(tmp_path / "home"))
    path = launch.default_project_path()
    assert path == tmp_path / "home" / "sample_data"
    assert (path / "workbench.json").is_file()
    assert len(list(path.glob("*.jpg"))) == 24


# ----- Qt's xcb platform plugin without its system libraries (issue 8.11) -------------------
def _xcb_session(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)


def test_missing_xcb_cursor_says_what_to_install_before_qt_starts(monkeypatch, capsys):
    _xcb_session(monkeypatch)
    tried = []

    def load(soname):
        tried.append(soname)
        return soname != "libxcb-cursor.so.0"

    monkeypatch.setattr(launch, "_loads", load)
    started = []
    import workbench.gui.app as app  # noqa: F401 - replaced below, must never run

    monkeypatch.setattr(app, "run_app", lambda *a, **k: started.append(a) or 0)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "libxcb-cursor.so.0" in err and "sudo apt install libxcb-cursor0" in err, err
    assert "Traceback" not in err and started == []
    assert "libxcb-cursor.so.0" in tried


def test_every_missing_library_is_listed_with_its_package(monkeypatch):
    _xcb_session(monkeypatch)
    absent = {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0"}
    problem = launch.platform_library_problem(load=lambda s: s not in absent)
    assert problem is not None
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxkbcommon-x11-0" in problem
    for soname in absent:
        assert soname in problem


def test_no_check_when_qt_will_not_use_xcb(monkeypatch):
    calls = []

    def load(soname):
        calls.append(soname)
        return False

    _xcb_session(monkeypatch)
    for platform in ("offscreen", "wayland", "minimal"):
        monkeypatch.setenv("QT_QPA_PLATFORM", platform)
        assert launch.platform_library_problem(load=load) is None
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    assert launch.platform_library_problem(load=load) is None
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert launch.platform_library_problem(load=load) is None
    assert calls == []
    monkeypatch.setattr(sys, "platform", "linux")
    assert launch.platform_library_problem(load=load) is not None  # xcb asked for explicitly


def test_all_libraries_present_means_no_problem(monkeypatch):
    _xcb_session(monkeypatch)
    assert launch.platform_library_problem(load=lambda s: True) is None


def test_the_plugin_s_own_dependency_list_is_read(monkeypatch):
    """The ELF DT_NEEDED list of PySide6's libqxcb.so names libraries a newer Qt may add."""
    qt = launch._qt_folder()
    plugin = qt / "plugins" / "platforms" / "libqxcb.so" if qt else None
    if plugin is None or not plugin.is_file():
        import pytest

        pytest.skip("this PySide6 has no xcb plugin")
    needs = launch._plugin_needs(qt)
    assert "libxcb-cursor.so.0" in needs and "libxcb.so.1" in needs
    assert not any(n.startswith("libQt6") for n in needs)  # bundled with PySide6
    _xcb_session(monkeypatch)
    # A library only the plugin's list names is checked too.
    monkeypatch.setattr(launch, "_plugin_needs", lambda qt: ["libxcb-newthing.so.7"])
    problem = launch.platform_library_problem(load=lambda s: s != "libxcb-newthing.so.7")
    assert problem is not None and "libxcb-newthing.so.7" in problem
