"""``workbench evaluate``: score predicted masks (or a model) against ground truth.

Three forms:

    workbench evaluate --pred DIR --gt DIR --classes FILE [--json]
    workbench evaluate IMAGES --model CKPT --gt DIR [--classes FILE] [--device D]
                       [--batch-size B] [--json]
    workbench evaluate PROJECT [--model N] [--split val|test|train] [--json]

All print mIoU, pixel accuracy and per-class IoU from one dataset-level confusion
matrix (``workbench.metrics``), the same numbers the metrics panel shows. The project
form is ``workbench.workflows.evaluate_project``, the metrics panel's own function: it
scores model version N (default: the current one) on a split and records the result
in the project (per-image scores of that version, metrics history). The ``--pred``
form never imports torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench import options
from workbench.commands.bars import progress_bar
from workbench.errors import WorkbenchError

WORST_SHOWN = 5


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate", help="score predicted masks, a model, or a project's model version",
        description="Score predictions against ground truth: mIoU, pixel accuracy and per-class "
                    "IoU from one dataset-level confusion matrix. Void classes and 255 in the "
                    "ground truth are ignored; predictions that are not a trainable class count "
                    "as wrong. Masks pair by file stem.",
        epilog="examples:\n"
               "  workbench evaluate --pred preds/ --gt valannot/ --classes classes.json\n"
               "  workbench evaluate val/ --model v0003.safetensors --gt valannot/ --json\n"
               "  workbench evaluate my_project --model 2 --split test --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="?", metavar="IMAGES|PROJECT",
                   help="image folder to predict with --model CKPT (model form), or a project")
    p.add_argument("--pred", metavar="DIR", help="folder of predicted masks (mask form)")
    p.add_argument("--model", metavar="CKPT|N", help="checkpoint (.safetensors) to predict IMAGES with; "
                                                      "project form: model version N (default: current)")
    p.add_argument("--gt", metavar="DIR", help="folder of ground-truth masks (mask and model forms)")
    p.add_argument("--split", default="val", choices=["val", "test", "train"],
                   help="project form: the split to score (default val)")
    p.add_argument("--state-dir", metavar="DIR", help="project form: the project's state folder")
    p.add_argument("--classes", metavar="FILE",
                   help="class schema JSON (required with --pred; with --model the checkpoint's "
                        "classes are used and FILE, if given, must match them)")
    p.add_argument("--device", default="auto", help="model and project forms: auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--batch-size", type=int, default=4, help="model form: images per batch")
    p.add_argument("--per-image", action="store_true",
                   help="list every image's mIoU, lowest first (default: the 5 lowest)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate in the requested form, print the report; 2 if nothing could be scored."""
    if args.gt is None:
        if args.pred is not None:
            raise WorkbenchError("--pred needs --gt DIR (the ground-truth masks)")
        if args.images is None:
            raise WorkbenchError("give PROJECT, --pred DIR --gt DIR, or IMAGES --model CKPT --gt DIR")
        return _run_project(args)
    if args.split != "val" or args.state_dir is not None:
        raise WorkbenchError("--split and --state-dir belong to the project form (without --gt)")
    if args.pred is not None:
        if args.model is not None or args.images is not None:
            raise WorkbenchError("use either --pred DIR, or IMAGES with --model CKPT, not both")
        if args.classes is None:
            raise WorkbenchError("--pred needs --classes FILE (the class schema of the masks)")
        report = _evaluate_masks(Path(args.pred), Path(args.gt), Path(args.classes))
        missing_label = "ground truth without a prediction"
    elif args.model is not None:
        if args.images is None:
            raise WorkbenchError("--model needs IMAGES, the folder of images to predict")
        options.check_batch_size(args.batch_size)
        report = _evaluate_model(Path(args.images), Path(args.model), Path(args.gt),
                                 args.classes, args.device, args.batch_size)
        missing_label = "ground truth without an image"
    else:
        raise WorkbenchError("give --pred DIR (predicted masks) or IMAGES --model CKPT")

    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(format_report(report, missing_label=missing_label,
                            worst=None if args.per_image else WORST_SHOWN))
    if report.images == 0:
        print(f"workbench: error: no image could be scored ({len(report.missing)} without "
              f"prediction, {len(report.problems)} with problems)", file=sys.stderr)
        return 2
    return 0


def parse_version(text: str | None, flag: str = "--model") -> int | None:
    """A model version given on the command line ("3" or "v3"); WorkbenchError otherwise."""
    if text is None:
        return None
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not digits.isdigit() or int(digits) < 1:
        raise WorkbenchError(f"{flag} must be a model version number such as 3 (see workbench models "
                             f"PROJECT), got {text!r}")
    return int(digits)


def _run_project(args: argparse.Namespace) -> int:
    from workbench.project import Project
    from workbench.workflows import evaluate_project

    if args.model is not None and args.model.lower().endswith(".safetensors"):
        raise WorkbenchError("--model CKPT needs --gt DIR (the ground-truth masks); for a project give "
                             "--model N, a model version number")
    version = parse_version(args.model)
    with Project.open(args.images, state_dir=args.state_dir, create=False) as project:
        if project.read_only:
            print("workbench: the project is open in another process: scoring without recording",
                  file=sys.stderr)
        with progress_bar("evaluate", unit="img") as bar:
            ev = evaluate_project(project, version=version, split=args.split, device=args.device,
                                  on_progress=bar)
    report = ev.report
    if report.images == 0 and not report.missing and not report.problems:
        # An empty split: a table of n/a scores would only hide the sentence that matters.
        raise WorkbenchError(f"the {ev.split} split has no images: nothing to score (set images' split "
                             "in the app's image list, or give --split val|test|train)")
    if args.json:
        print(json.dumps(ev.to_json()))
    else:
        print(f"model v{ev.version} on the {ev.split} split")
        print(format_report(report, missing_label=f"{ev.split} images without a reference mask",
                            worst=None if args.per_image else WORST_SHOWN))
    if report.images == 0:
        print(f"workbench: error: no image of the {ev.split} split could be scored ({len(report.missing)} "
              f"without ground truth or a verified label, {len(report.problems)} with problems)",
              file=sys.stderr)
        return 2
    return 0


def _evaluate_masks(pred_dir: Path, gt_dir: Path, classes: Path):
    from workbench.classes import ClassSchema
    from workbench.metrics import evaluate_folders

    schema = ClassSchema.load(classes)
    with progress_bar("evaluate", unit="mask") as bar:
        return evaluate_folders(pred_dir, gt_dir, schema, on_progress=bar)


def _evaluate_model(images: Path, checkpoint: Path, gt_dir: Path, classes: str | None,
                    device: str, batch_size: int):
    # Imported here so that the --pred form never loads torch.
    from workbench.ml.evaluation import evaluate_model

    if classes is not None:
        _check_schema_matches(Path(classes), checkpoint)
    with progress_bar("evaluate", unit="img") as bar:
        return evaluate_model(images, checkpoint, gt_dir, device=device, batch_size=batch_size,
                              on_progress=bar, cancel=None)


def _check_schema_matches(classes: Path, checkpoint: Path) -> None:
    """Refuse a --classes file whose trainable classes differ from the checkpoint's."""
    from workbench.classes import ClassSchema
    from workbench.ml.checkpoint import read_meta

    given = ClassSchema.load(classes)
    carried = read_meta(checkpoint).class_schema()
    if given.names != carried.names:
        raise WorkbenchError(
            f"classes {given.names} differ from the model's classes {carried.names}; "
            "omit --classes to use the model's own", classes)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def format_report(report, *, missing_label: str = "ground truth without a prediction",
                  worst: int | None = WORST_SHOWN) -> str:
    """Human-readable report: headline scores, per-class table, lowest-scoring images
    (``worst`` of them, all for None), missing pairs and problems."""
    s = report.scores
    scored = sum(v is not None for v in s.per_class_iou)
    lines = [
        f"mIoU            {_fmt(s.miou)}   (mean over {scored} of {len(s.per_class_iou)} classes "
        "present in ground truth or prediction)",
        f"pixel accuracy  {_fmt(s.pixel_accuracy)}   ({s.pixels:,} pixels scored)",
        f"images scored   {report.images}   (missing predictions: {len(report.missing)}, "
        f"problems: {len(report.problems)})",
        "",
    ]
    width = max([len("class")] + [len(n) for n in report.class_names])
    lines.append(f"  {'class':<{width}}  IoU")
    for name, iou in zip(report.class_names, s.per_class_iou):
        note = "   (absent from ground truth and prediction)" if iou is None else ""
        lines.append(f"  {name:<{width}}  {_fmt(iou)}{note}")
    ranked = sorted(((v, k) for k, v in report.per_image.items() if v is not None))
    if worst is None:
        lines += ["", "per-image mIoU, lowest first:"]
        lines += [f"  {k}  {v:.4f}" for v, k in ranked]
        lines += [f"  {k}  n/a (nothing to score)" for k, v in report.per_image.items() if v is None]
    elif len(ranked) > 1 and ranked[0][0] < 1.0:
        lines += ["", "lowest per-image mIoU:"]
        lines += [f"  {k}  {v:.4f}" for v, k in ranked[:worst]]
    if report.missing:
        lines += ["", f"{missing_label} ({len(report.missing)}):"]
        lines += [f"  {m}" for m in report.missing]
    if report.problems:
        lines += ["", f"problems ({len(report.problems)}), not scored:"]
        lines += [f"  {p}" for p in report.problems]
    return "\n".join(lines)
