"""The ``workbench`` command: the desktop app, plus headless sub-commands.

``workbench`` or ``workbench PATH`` opens the app; ``workbench SUBCOMMAND ...`` runs
headless. Each sub-command lives in ``workbench/commands/<name>.py`` and provides
``add_parser(subparsers)`` (which sets ``func``) so this module stays a dispatcher.
Modules are imported only when used, so ``workbench evaluate`` never loads torch or Qt.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workbench import __version__
from workbench.errors import WorkbenchError

# sub-command name -> module under workbench.commands
COMMANDS: dict[str, str] = {
    "import": "import_masks",
    "export": "export",
    "evaluate": "evaluate",
    "train": "train",
    "predict": "predict",
    "models": "models",
    "sample-data": "sample_data",
    "labels": "labels",
    # issue 13: frame propagation and suggestions
    "propagate": "propagate",
    "suggest": "suggest",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only ``command``'s module is imported (all for --help)."""
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Segmentation Workbench. Without a sub-command, opens the desktop app "
                    "on PATH (default: the bundled sample project).")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui = sub.add_parser("open", help="open the desktop app on an image folder or project")
    gui.add_argument("path", nargs="?", help="image folder or project (default: sample_data)")
    gui.add_argument("--state-dir", help="keep project state here instead of PATH/.workbench "
                                         "(for read-only image folders)")
    gui.set_defaults(func=_run_gui)
    for name, module in COMMANDS.items():
        if command is not None and name != command:
            continue
        try:
            mod = importlib.import_module(f"workbench.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"workbench.commands.{module}":
                continue  # a command still being built is simply absent from --help
            raise
        mod.add_parser(sub)
    return parser


def _run_gui(args: argparse.Namespace) -> int:
    from workbench.launch import launch_gui  # keeps Qt out of headless commands

    return launch_gui(args.path, state_dir=getattr(args, "state_dir", None))


def _tolerant_output() -> None:
    # File names are printed as they are; a console that cannot encode one (a legacy
    # code page, output redirected with an ASCII locale) must show an escape, not crash.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot be reconfigured keeps its handler
                pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _tolerant_output()
    # `workbench` and `workbench PATH` open the app; anything else is a sub-command.
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("open", "-h", "--help", "--version")):
        argv = ["open", *argv]
    parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`workbench models P | head`): stop quietly, as cat does. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
