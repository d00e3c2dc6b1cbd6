"""``workbench labels PROJECT``: the labels of a project and their history.

    workbench labels PROJECT                          every labelled image: status, made by, versions kept
    workbench labels PROJECT --history NAME           the kept earlier versions of one image's label
    workbench labels PROJECT --restore NAME --version K   make version K the label again

A restore keeps the label it replaces in the history first, so it can be undone with
another restore. ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import difflib
import json
import time

from workbench.errors import WorkbenchError
from workbench.project import ImageRecord, Project
from workbench.project.label_history import LabelVersion


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``labels`` and set its ``func``."""
    p = subparsers.add_parser(
        "labels", help="list labels, show an image's label history, restore an earlier version",
        description="List the labels of a project, show the earlier versions of one image's "
                    "label (what saves, imports, clears, restores and class changes replaced, and "
                    "who made each), or restore one of them. A restore keeps the label it "
                    "replaces in the history.",
        epilog="examples:\n"
               "  workbench labels images/ --history 0001TP_006690.png\n"
               "  workbench labels images/ --restore 0001TP_006690.png --version 3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", metavar="PROJECT", help="the image folder (or its state folder)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--history", metavar="NAME", help="show the label history of image NAME (file name or stem)")
    what.add_argument("--restore", metavar="NAME", help="restore an earlier label version of image NAME")
    p.add_argument("--version", type=int, metavar="K", help="the version to restore (see --history)")
    p.add_argument("--state-dir", metavar="DIR", help="the project's state folder, if not PROJECT/.workbench")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run, parser=p)
    return p


def _when(t: float | None) -> str:
    return "unknown" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _labelled(v: LabelVersion) -> str:
    if v.labelled is None or not v.pixels:
        return "unknown"
    return f"{v.labelled} of {v.pixels} ({100.0 * v.labelled / v.pixels:.0f}%)"


def _version_json(v: LabelVersion) -> dict:
    return {"version": v.version, "made": v.made, "replaced": v.replaced, "made_by": v.describe_source(),
            "source": v.source, "status": v.status, "reason": v.reason, "labelled": v.labelled,
            "pixels": v.pixels, "bytes": v.size}


def _current_json(rec: ImageRecord) -> dict:
    return {"image": rec.name, "has_label": rec.has_label, "status": rec.status.value,
            "source": rec.source, "updated": rec.updated}


def _image(project: Project, name: str) -> ImageRecord:
    rec = project.find(name)
    if rec is not None:
        return rec
    names = [r.name for r in project.images()]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f" ({len(names)} images in the project)"
    raise WorkbenchError(f"no image named {name!r} in this project{hint}", project.folder)


def _made_by(source: str | None) -> str:
    if source is None:
        return "unknown"
    return f"model v{source.split(':', 1)[1]}" if source.startswith("model:") else source


def run(args: argparse.Namespace) -> int:
    """List, show a history or restore; 0 on success."""
    if args.version is not None and args.restore is None:
        args.parser.error("--version needs --restore NAME")
    if args.restore is not None and args.version is None:
        args.parser.error("--restore NAME needs --version K (list them with --history NAME)")
    with Project.open(args.project, state_dir=args.state_dir, create=False) as project:
        if args.restore is not None:
            return _restore(project, args)
        if args.history is not None:
            return _history(project, args)
        return _list(project, args)


def _list(project: Project, args: argparse.Namespace) -> int:
    rows = []
    for rec in project.images():
        kept = project.label_history(rec.id)
        if rec.has_label or kept:
            rows.append((rec, kept))
    if args.json:
        print(json.dumps([{**_current_json(rec), "versions": len(kept)} for rec, kept in rows], indent=2))
        return 0
    print(f"project: {project.folder} ({len(project.images())} images, {sum(r.has_label for r, _ in rows)} labelled)")
    if not rows:
        print("no labels yet")
        return 0
    width = max(len(rec.name) for rec, _ in rows)
    print(f"{'image':<{width}}  {'status':<10} {'made by':<10} {'saved':<19}  earlier versions")
    for rec, kept in rows:
        status = rec.status.value if rec.has_label else "no label"
        print(f"{rec.name:<{width}}  {status:<10} {_made_by(rec.source) if rec.has_label else '-':<10} "
              f"{_when(rec.updated) if rec.has_label else '-':<19}  {len(kept)}")
    return 0


def _history(project: Project, args: argparse.Namespace) -> int:
    rec = _image(project, args.history)
    kept = project.label_history(rec.id)
    if args.json:
        print(json.dumps({**_current_json(rec), "versions": [_version_json(v) for v in kept]}, indent=2))
        return 0
    if rec.has_label:
        print(f"{rec.name}: current label {rec.status.value}, made by {_made_by(rec.source)}, "
              f"saved {_when(rec.updated)}")
    else:
        print(f"{rec.name}: no current label")
    if not kept:
        print("no earlier versions kept")
        return 0
    print(f"{len(kept)} earlier version(s), oldest first (restore one with --restore {rec.name} --version K):")
    print(f"{'K':>4}  {'made':<19}  {'made by':<10} {'status':<10} {'replaced':<19}  {'why':<18} labelled pixels")
    for v in kept:
        print(f"{v.version:>4}  {_when(v.made):<19}  {v.describe_source():<10} {v.status or 'unknown':<10} "
              f"{_when(v.replaced):<19}  {v.reason or 'unknown':<18} {_labelled(v)}")
    return 0


def _restore(project: Project, args: argparse.Namespace) -> int:
    if project.read_only:
        raise WorkbenchError("project is open in another window/process; close it and restore again",
                             project.state_dir)
    rec = _image(project, args.restore)
    kept = project.label_history(rec.id)
    before = {v.version for v in kept}
    missing = project.restore_label(rec.id, args.version)  # unknown K: WorkbenchError listing them
    chosen = next(v for v in kept if v.version == args.version)
    added = [v for v in project.label_history(rec.id) if v.version not in before]
    now = project.get(rec.id)
    if args.json:
        print(json.dumps({"image": rec.name, "restored": _version_json(chosen),
                          "previous_kept_as": added[-1].version if added else None,
                          "missing_classes": missing, "current": _current_json(now)}, indent=2))
        return 0
    print(f"restored version {chosen.version} of {rec.name} (made by {chosen.describe_source()}, "
          f"{_when(chosen.made)}); it is now the label, {now.status.value}")
    if added:
        print(f"the label it replaced is kept as version {added[-1].version} "
              f"(undo: workbench labels {args.project} --restore {rec.name} --version {added[-1].version})")
    if missing:
        print(f"note: classes no longer in the project came back as not labelled: {', '.join(missing)}")
    return 0
