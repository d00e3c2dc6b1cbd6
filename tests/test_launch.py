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
