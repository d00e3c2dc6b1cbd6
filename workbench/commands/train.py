"""``workbench train``: train a U-Net on a folder of images + masks, or on a project.

Two forms, one trainer (``workbench.ml.training.train``):

    workbench train IMAGES --masks DIR --classes FILE --out CKPT [--val-images DIR --val-masks DIR]
    workbench train PROJECT [--state-dir DIR] [--fresh] [--policy better|always]

The project form is ``workbench.workflows.train_project``, the same function as the
Retrain button: it trains on a snapshot of the verified and edited labels of the train
split, validates on the val split (ground truth where imported, else labels),
fine-tunes the current model if there is one, and registers the result as the next
model version, current only if the promotion policy says so. In the folder form Ctrl+C
stops cleanly and keeps the best checkpoint; in the project form a stopped run is not
registered (exit 130). Works under ``torchrun --nproc-per-node N -m workbench train ...``
(see docs/distributed.md): every rank trains, rank 0 registers.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any

from workbench.errors import CancelledError, WorkbenchError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train", help="train a U-Net on images + masks, or on a project's labels",
        description="Train (or fine-tune) a segmentation model. Masks pair with images by file "
                    "stem; void classes and 255 are ignored, so partly labelled masks are fine. "
                    "The best checkpoint by validation mIoU is kept. Ctrl+C stops: the folder form "
                    "keeps the best checkpoint so far; the project form registers no version "
                    "(as Cancel in the app). The project form starts from the project's stored "
                    "training settings (as Retrain does); options given here go over them.",
        epilog="examples:\n"
               "  workbench train camvid/train --masks camvid/trainannot --classes classes.json \\\n"
               "      --val-images camvid/val --val-masks camvid/valannot --minutes 20 --out model.safetensors\n"
               "  workbench train my_project --epochs 20\n"
               "  torchrun --nproc-per-node 2 -m workbench train IMAGES --masks DIR --classes FILE --out CKPT",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", metavar="IMAGES|PROJECT",
                   help="folder of training images (with --masks), or a project folder")
    p.add_argument("--masks", metavar="DIR", help="folder of training masks (folder form)")
    p.add_argument("--classes", metavar="FILE", help="class schema JSON (folder form)")
    p.add_argument("--out", metavar="CKPT", help="where to write the checkpoint (.safetensors; folder form)")
    p.add_argument("--val-images", metavar="DIR", help="validation images (default: hold out "
                                                       "a seeded 15%% of the training images)")
    p.add_argument("--val-masks", metavar="DIR", help="validation masks")
    p.add_argument("--state-dir", metavar="DIR", help="project form: the project's state folder")
    p.add_argument("--init", metavar="CKPT", help="checkpoint to fine-tune (its head is replaced if "
                                                  "the classes differ); project form: default the current model")
    p.add_argument("--fresh", action="store_true", help="project form: start from scratch, not "
                                                         "from the current model")
    p.add_argument("--policy", choices=["better", "always"],
                   help="project form: make the new model current only if its val mIoU is at least "
                        "the current model's (better), or always (default: the project's setting, "
                        "set with workbench models PROJECT --policy)")
    p.add_argument("--quick", action="store_true",
                   help="project form: train the quick model (a random forest on filter features; "
                        "seconds on a CPU) instead of a U-Net; registered as a model version "
                        "(workbench/commands/quick_train.py)")
    p.add_argument("--arch", help="architecture (unet, unetplusplus, fpn, ...; default unet)")
    p.add_argument("--encoder", help="encoder (default: resnet18 on CPU, resnet34 on GPU)")
    p.add_argument("--encoder-weights", default="none", metavar="none|imagenet|PATH",
                   help="initial encoder weights: none (random, default), imagenet (needs a download), "
                        "or PATH of a local .safetensors file with the encoder's state_dict")
    budget = p.add_argument_group("budget (the first reached stops training)")
    budget.add_argument("--epochs", type=int, help="number of epochs (default 30 if no --minutes)")
    budget.add_argument("--minutes", type=float, help="time budget in minutes, validation included")
    budget.add_argument("--steps", type=int, help="optimizer-step budget (one step = one batch); "
                                                  "machine-independent, unlike --minutes")
    budget.add_argument("--patience", type=int, metavar="N",
                        help="also stop when val mIoU has not improved for N validations (early stopping)")
    p.add_argument("--schedule", choices=["poly", "onecycle"],
                   help="LR schedule: warm-up + polynomial decay (poly, default) or one-cycle")
    p.add_argument("--decoder", choices=["full", "slim"],
                   help="U-Net decoder widths: full (smp's 256..16) or slim (half: faster steps on a CPU); "
                        "default: the device recipe")
    p.add_argument("--loss", choices=["ce", "lovasz"],
                   help="cross-entropy (ce) or cross-entropy + Lovasz-softmax (lovasz); "
                        "default: the device recipe (lovasz on a CPU, ce on a GPU)")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="validate and save an exponential moving average of the weights with this decay "
                        "(e.g. 0.99; default off)")
    p.add_argument("--finetune-lr", type=float, metavar="LR",
                   help="peak learning rate when fine-tuning (default: --lr x 0.2, with a warm-up)")
    bn = p.add_mutually_exclusive_group()
    bn.add_argument("--freeze-bn", dest="freeze_bn", action="store_true", default=None,
                    help="keep BatchNorm statistics fixed (default: when fine-tuning)")
    bn.add_argument("--train-bn", dest="freeze_bn", action="store_false",
                    help="update BatchNorm statistics even when fine-tuning")
    p.add_argument("--val-fraction", type=float, metavar="F",
                   help="with no validation images, hold out this fraction of the training images "
                        "for validation (default 0.15; 0 = validate on the training images)")
    p.add_argument("--batch-size", type=int, help="images per step per process (CPU default 8, GPU 16)")
    p.add_argument("--crop", type=int, help="training crop size, a multiple of 32 (CPU 256, GPU 512)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    cw = p.add_mutually_exclusive_group()
    cw.add_argument("--class-weights", dest="class_weights", action="store_true", default=None,
                    help="median-frequency class weights (default on CPU)")
    cw.add_argument("--no-class-weights", dest="class_weights", action="store_false",
                    help="plain cross-entropy")
    p.add_argument("--class-weight-power", type=float, metavar="P",
                   help="class weights = (median frequency balancing) ** P (default 0.5; 1 = full)")
    p.add_argument("--dice", action="store_true", help="add a soft Dice term to the loss")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps (default auto)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed + data = same weights on CPU)")
    p.add_argument("--workers", type=int, help="DataLoader worker processes (default: automatic)")
    p.add_argument("--threads", type=int, help="CPU threads per process (default: the cores other "
                                               "processes leave free, re-checked every 30 s)")
    p.set_defaults(func=run)


def pair_by_stem(images_dir: Path, masks_dir: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(image, mask) pairs matched by file stem, and the names of images without a mask."""
    from workbench.imageio import is_image_file, list_images

    images = list_images(images_dir)
    if not masks_dir.is_dir():
        raise WorkbenchError("mask folder not found", masks_dir)
    masks: dict[str, Path] = {}
    for m in sorted(masks_dir.iterdir(), key=lambda q: q.name):
        if m.is_file() and is_image_file(m):
            masks.setdefault(m.stem, m)
    pairs, missing = [], []
    for img in images:
        if img.stem in masks:
            pairs.append((img, masks[img.stem]))
        else:
            missing.append(img.name)
    return pairs, missing


def _config(args: argparse.Namespace, init: str | Path | None, base: Any = None) -> Any:
    """TrainConfig from the flags; project form: the flags over ``base``, the project's stored
    training settings (Model > Training settings in the app), so both train alike."""
    from workbench.ml.training import TrainConfig

    for name in ("epochs", "batch_size", "crop", "workers", "threads", "steps"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "workers" else 1):
            raise WorkbenchError(f"--{name.replace('_', '-')} must be at least "
                                 f"{0 if name == 'workers' else 1}, got {v}")
    if args.minutes is not None and not args.minutes > 0:
        raise WorkbenchError(f"--minutes must be more than 0, got {args.minutes}")
    given = _given(args)
    if base is None:
        return TrainConfig(**given, init=init)
    if "epochs" in given or "minutes" in given or "steps" in given:
        # a budget on the command line replaces the stored one
        given.setdefault("epochs", None)
        given.setdefault("minutes", None)
        given.setdefault("steps", None)
    return dataclasses.replace(base, **given, init=init)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields the command line set (None / unset flags are left out)."""
    values = {"arch": args.arch, "encoder": args.encoder, "epochs": args.epochs, "minutes": args.minutes,
              "batch_size": args.batch_size, "crop": args.crop, "lr": args.lr,
              "class_weights": args.class_weights, "class_weight_power": args.class_weight_power,
              "seed": args.seed, "device": args.device, "workers": args.workers, "threads": args.threads,
              "steps": args.steps, "patience": args.patience, "schedule": args.schedule, "loss": args.loss,
              "decoder": args.decoder, "ema": args.ema,
              "finetune_lr": args.finetune_lr, "freeze_bn": args.freeze_bn,
              "val_fraction": args.val_fraction}
    out = {k: v for k, v in values.items() if v is not None}
    if args.encoder_weights != "none":
        out["encoder_weights"] = args.encoder_weights
    if args.dice:
        out["dice"] = True
    return out


def _folder_job(args: argparse.Namespace) -> dict[str, Any]:
    from workbench.classes import ClassSchema

    if args.classes is None or args.out is None:
        raise WorkbenchError("training on a folder needs --masks DIR, --classes FILE and --out CKPT "
                             "(or give a project folder without --masks)")
    schema = ClassSchema.load(args.classes)
    train_pairs, missing = pair_by_stem(Path(args.images), Path(args.masks))
    notes = [f"{len(missing)} training image(s) have no mask in {args.masks} and are skipped"
             f" (e.g. {missing[0]})"] if missing else []
    if not train_pairs:
        raise WorkbenchError(f"no image in {args.images} has a mask with the same stem in {args.masks}")
    val_pairs: list = []
    if (args.val_images is None) != (args.val_masks is None):
        raise WorkbenchError("give both --val-images DIR and --val-masks DIR, or neither")
    if args.val_images is not None:
        val_pairs, vmissing = pair_by_stem(Path(args.val_images), Path(args.val_masks))
        if vmissing:
            notes.append(f"{len(vmissing)} validation image(s) have no mask and are skipped")
        if not val_pairs:
            raise WorkbenchError(f"no image in {args.val_images} has a mask in {args.val_masks}")
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise WorkbenchError("the checkpoint file must end in .safetensors", out)
    return {"schema": schema, "train": train_pairs, "val": val_pairs, "out": out, "init": args.init,
            "notes": notes, "parent": None}


def run(args: argparse.Namespace) -> int:
    """Train in the folder or project form; prints the result, 0 on success, 130 when cancelled."""
    from workbench.ml import distributed

    if args.masks is None and (args.classes is not None or args.out is not None):
        raise WorkbenchError("--classes and --out belong to the folder form: add --masks DIR")
    if getattr(args, "quick", False):  # issue 13: the quick model (its own module)
        from workbench.commands.quick_train import run_quick

        return run_quick(args)
    if args.masks is None:
        return _run_project(args)
    # Join the process group first (torchrun) so that only rank 0 reads the folders.
    ctx = distributed.setup(args.device or "auto")
    try:
        job = _folder_job(args)
        config = _config(args, job["init"])
        say = (lambda msg: print(msg, file=sys.stderr)) if ctx.is_main else (lambda msg: None)
        for note in job["notes"]:
            say(f"workbench: {note}")
        say(f"workbench: training on {len(job['train'])} image(s)"
            + (f", validating on {len(job['val'])}" if job["val"] else "")
            + f"; best checkpoint -> {job['out']}")
        from workbench.ml.training import train

        def run_train(on_progress: Any, cancel: Any) -> Any:
            try:
                return train(config, job["schema"], job["train"], job["val"], job["out"],
                             on_progress=on_progress, cancel=cancel, parent=None)
            except CancelledError:
                raise WorkbenchError("cancelled before training started; no checkpoint written") from None

        result = _with_bar(run_train, config, ctx, "keeping the best checkpoint")
        if not ctx.is_main:
            return 0
        _print_result(result)
        return 130 if result.cancelled else 0
    finally:
        ctx.close()


def _print_result(result: Any) -> None:
    best = f"{result.best_miou:.4f}" if result.best_miou is not None else "n/a"
    how = {"cancel": "stopped (Ctrl+C)", "time": "time budget reached", "steps": "step budget reached",
           "patience": "stopped early (val mIoU stopped improving)",
           "epochs": "finished"}[result.stopped_by]
    print(f"{how}: {result.epochs_done} epoch(s), {result.steps} step(s); best val mIoU {best}; "
          f"checkpoint {result.checkpoint}")


def _stored_training(project: Any) -> bool:
    from workbench.workflows import SETTINGS_KEY

    return bool(project.settings().get(SETTINGS_KEY))


def _run_project(args: argparse.Namespace) -> int:
    """The project form: ``workflows.train_project``, the same as the Retrain button."""
    from workbench.ml import distributed
    from workbench.commands.ranks import open_on_ranks
    from workbench.workflows import config_from_settings, train_project

    ctx = distributed.setup(args.device or "auto")
    project = None
    try:
        project = open_on_ranks(ctx, args.images, state_dir=args.state_dir)  # only rank 0 has it
        if project is not None:
            for note in project.problems:  # what was recovered or skipped at open
                print(f"note: {note}", file=sys.stderr)
            if not project.read_only:
                print(f"workbench: training on {len(project.training_pairs('train'))} labelled "
                      f"image(s) of {project.folder}", file=sys.stderr)
        base, stored_fine_tune = (config_from_settings(project) if project is not None
                                  else (None, True))
        config = _config(args, args.init, base)
        if project is not None and _stored_training(project):
            print("workbench: the project's training settings (Model > Training settings in the app)"
                  + (", with the options given here over them" if _given(args) else ""), file=sys.stderr)

        def run_train(on_progress: Any, cancel: Any) -> Any:
            return train_project(project, config, fine_tune=not args.fresh and stored_fine_tune,
                                 policy=args.policy,
                                 on_progress=on_progress, cancel=cancel, distributed_ctx=ctx)

        outcome = _with_bar(run_train, config, ctx, "the run will not be registered")
        if not ctx.is_main:
            return 0
        if outcome.result is not None:
            _print_result(outcome.result)
        if outcome.cancelled:
            print(f"workbench: {outcome.message}", file=sys.stderr)
            return 130
        print(f"registered model version {outcome.version} ({outcome.record.path.name})")
        print(outcome.message)
        return 0
    finally:
        if project is not None:
            project.close()
        ctx.close()


def _with_bar(run_train: Any, config: Any, ctx: Any, on_stop: str) -> Any:
    """Run ``run_train(on_progress, cancel)`` with a tqdm bar; the first Ctrl+C cancels, a second aborts."""
    from workbench.commands.bars import progress_bar
    from workbench.progress import CancelToken

    cancel = CancelToken()

    def on_signal(signum: int, frame: Any) -> None:
        if cancel.cancelled:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        cancel.cancel()
        if ctx.is_main:
            print(f"\nworkbench: stopping after this step; {on_stop} (Ctrl+C again to abort)",
                  file=sys.stderr)

    old_int = signal.signal(signal.SIGINT, on_signal)
    # torchrun forwards SIGTERM to the workers when it is interrupted: stop cleanly too.
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        unit = "s" if config.minutes is not None and config.epochs is None and config.steps is None else "step"
        with progress_bar("train", unit=unit) as bar:
            def on_progress(p: Any) -> None:
                bar(p)
                if p.info.get("phase") == "setup" and p.message:
                    print(f"workbench: {p.message}", file=sys.stderr)
                elif p.info.get("phase") == "validate" and "val_miou" in p.info and not sys.stderr.isatty():
                    print(f"workbench: {p.message}", file=sys.stderr)
            return run_train(on_progress if ctx.is_main else None, cancel)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
