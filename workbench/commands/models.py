"""``workbench models PROJECT``: list a project's model versions and control them.

    workbench models PROJECT [--json]          list versions (current marked with *)
    workbench models PROJECT --use N           make version N current (rollback)
    workbench models PROJECT --delete N        delete version N (never the current one)
    workbench models PROJECT --note N TEXT     attach a note to version N ("" clears it)
    workbench models PROJECT --policy better|always   when a new run becomes current

Thin over ``workbench.workflows`` (the app's Models panel calls the same functions).
"""

from __future__ import annotations

import argparse
import json
import time

from workbench.errors import WorkbenchError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``models`` sub-command."""
    p = subparsers.add_parser(
        "models", help="list a project's model versions; make one current, delete, note",
        description="List the model versions of a project: parent, when, images trained on, val "
                    "mIoU before -> after, size on disk, note. The current model is marked *. "
                    "A finished training run becomes current only if its val mIoU is at least the "
                    "current model's (policy 'better', the default) or always ('always').",
        epilog="examples:\n"
               "  workbench models my_project\n"
               "  workbench models my_project --use 2\n"
               "  workbench models my_project --note 3 \"after fixing the roads\" --json\n"
               "  workbench models my_project --policy always",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", metavar="PROJECT", help="the project folder (its image folder)")
    p.add_argument("--state-dir", metavar="DIR", help="the project's state folder")
    p.add_argument("--use", metavar="N", help="make model version N current")
    p.add_argument("--delete", metavar="N", help="delete model version N (its file and cached predictions)")
    p.add_argument("--note", nargs=2, metavar=("N", "TEXT"), help="attach TEXT to model version N")
    p.add_argument("--policy", choices=["better", "always"],
                   help="promotion policy for new training runs of this project")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Apply the requested changes (in the order use, note, delete, policy), then list."""
    from workbench.commands.evaluate import parse_version
    from workbench.project import Project
    from workbench.workflows import (delete_model, model_summaries, promotion_policy, set_model_note,
                                     set_promotion_policy, use_model)

    use = parse_version(args.use, "--use")
    delete = parse_version(args.delete, "--delete")
    note = (parse_version(args.note[0], "--note"), args.note[1]) if args.note else None
    changes = use is not None or delete is not None or note is not None or args.policy is not None
    with Project.open(args.project, state_dir=args.state_dir, create=False) as project:
        if changes and project.read_only:
            raise WorkbenchError("the project is open for writing in another process (the app?); "
                                 "change its models there, or close it first", project.state_dir)
        said = []
        if use is not None:
            use_model(project, use)
            said.append(f"v{use} is now the current model")
        if note is not None:
            set_model_note(project, *note)
            said.append(f"note set on v{note[0]}")
        if delete is not None:
            delete_model(project, delete)
            said.append(f"deleted v{delete}")
        if args.policy is not None:
            set_promotion_policy(project, args.policy)
            said.append(f"promotion policy: {args.policy}")
        summaries = model_summaries(project)
        try:
            policy = promotion_policy(project)
        except WorkbenchError as exc:  # the list is still worth showing; the next run names it
            policy = f"unreadable ({exc}); fix it with --policy better|always"
        folder = project.folder
    if args.json:
        current = next((s.version for s in summaries if s.current), None)
        print(json.dumps({"project": str(folder), "current": current, "policy": policy,
                          "models": [s.to_json() for s in summaries], "changes": said}))
        return 0
    for line in said:
        print(line)
    print(format_models(summaries, policy))
    return 0


def _miou(v: float | None) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def _size(n: int) -> str:
    from workbench.workflows.models import format_size   # the Models panel's units

    return format_size(n)


def format_models(summaries: list, policy: str) -> str:
    """The table ``workbench models`` prints."""
    from workbench.workflows import RECOVERED_NOTE, recovered_label

    if not summaries:
        return "no model versions yet (train one: workbench train PROJECT, or Retrain in the app)"
    lines = [f"   {'version':<8} {'parent':<7} {'created':<17} {'images':>6}  {'val mIoU':<16} "
             f"{'size':>8}  note"]
    for s in summaries:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.created))
        before = "" if s.previous_val_miou is None else f"{_miou(s.previous_val_miou)} -> "
        miou = f"{before}{_miou(s.val_miou)}"
        parent = f"v{s.parent}" if s.parent is not None else "-"
        note = s.note if s.problem is None else f"{s.note}  [{s.problem}]".strip()
        if s.recovered:
            note = f"[{recovered_label(s)}] {note}".strip()
        if getattr(s, "kind", "unet") == "quick":   # issue 13
            note = f"[quick model] {note}".strip()
        lines.append(f"{'*' if s.current else ' '}  {'v' + str(s.version):<8} {parent:<7} {created:<17} "
                     f"{s.trained_on:>6}  {miou:<16} {_size(s.size_bytes):>8}  {note}")
    total = sum(s.size_bytes for s in summaries)
    lines.append(f"{len(summaries)} version(s), {_size(total)} on disk; * = current; val mIoU: the model "
                 f"current before the run -> this version, on the same val images; promotion policy: {policy}")
    if any(s.recovered for s in summaries):
        lines.append(RECOVERED_NOTE + " (delete it with --delete N, or keep it with --use N)")
    return "\n".join(lines)
