"""``workbench predict``: label masks for images with a model, or fill a project's prediction cache.

    workbench predict IMAGES --model CKPT --out DIR [--confidence]
    workbench predict PROJECT [--model N] [--only unlabelled|all]

The project form is ``workbench.workflows.predict_project``, the app's Predict all.
Both run under ``torchrun --nproc-per-node N -m workbench predict ...``: each rank
predicts every N-th image (its share), on its own device; rank 0 reports (and, for a
project, records what every rank cached).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from workbench import options
from workbench.commands.bars import progress_bar
from workbench.errors import InputError, WorkbenchError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``predict`` sub-command."""
    p = subparsers.add_parser(
        "predict", help="predict label masks with a model, or fill a project's prediction cache",
        description="Predict a palette PNG label mask (named by image stem, coloured with the "
                    "model's classes) for every image. Large images are predicted in "
                    "overlapping tiles. An unreadable image is reported and skipped; the "
                    "exit status is then 1.",
        epilog="examples:\n"
               "  workbench predict photos/ --model v0003.safetensors --out preds/\n"
               "  workbench predict scan.tif --model v0003.safetensors --out preds/ --confidence\n"
               "  workbench predict my_project --only all\n"
               "  torchrun --nproc-per-node 4 -m workbench predict big_folder/ --model m.safetensors --out preds/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", metavar="IMAGES|PROJECT", help="an image file or a folder of images, or a "
                                                             "project (without --out)")
    p.add_argument("--model", metavar="CKPT|N", help="checkpoint (.safetensors); project form: model "
                                                      "version N (default: the current model)")
    p.add_argument("--out", metavar="DIR", help="folder for the masks (created; folder form)")
    p.add_argument("--only", choices=["unlabelled", "all"], default="unlabelled",
                   help="project form: predict the images nobody labelled (default), or all")
    p.add_argument("--state-dir", metavar="DIR", help="project form: the project's state folder")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--batch-size", type=int, default=4, help="images (or tiles) per batch (4)")
    p.add_argument("--tile", type=int, default=1024,
                   help="images larger than this many pixels a side go through tiles (1024)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="auto (default): ONNX Runtime on a CPU when installed (exported on first use and "
                        "cached beside the checkpoint), else PyTorch; torch; onnx (fail if unavailable)")
    p.add_argument("--threads", type=int, help="CPU threads (default: the cores other processes leave "
                                               "free, re-checked every 30 s)")
    p.add_argument("--confidence", action="store_true",
                   help="also write <stem>.conf.png: max softmax probability as 0-255 grey")
    p.set_defaults(func=run)


def encode_confidence(confidence: np.ndarray) -> bytes:
    """PNG bytes of a 0..1 float confidence map as 8-bit grey (0..255)."""
    from PIL import Image

    grey = np.rint(np.clip(confidence, 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def _inputs(path: Path) -> list[Path]:
    from workbench.imageio import list_images

    if path.is_dir():
        files = list_images(path)
        if not files:
            raise WorkbenchError("no images found in the folder", path)
        return files
    if not path.exists():
        raise InputError("no such file or folder", path)
    return [path]


def run(args: argparse.Namespace) -> int:
    """Predict in the folder or project form; 1 if some image failed, 0 otherwise."""
    from workbench.ml import distributed

    options.check_batch_size(args.batch_size)
    options.check_tile(args.tile)
    if args.out is None:
        if args.confidence:
            raise WorkbenchError("--confidence belongs to the folder form (with --out DIR); a project "
                                 "always caches confidence")
        return _run_project(args, distributed)
    if args.model is None:
        raise WorkbenchError("the folder form needs --model CKPT (and --out DIR); for a project, "
                             "leave out --out")
    if args.only != "unlabelled" or args.state_dir is not None:
        raise WorkbenchError("--only and --state-dir belong to the project form (without --out)")
    ctx = distributed.setup(args.device)
    try:
        return _run_folder(args, ctx)
    finally:
        ctx.close()


def _run_folder(args: argparse.Namespace, ctx) -> int:
    from workbench.atomic import atomic_write_bytes
    from workbench.imageio import read_image
    from workbench.masks import write_mask
    from workbench.ml.device import describe_device
    from workbench.ml.inference import Predictor
    from workbench.progress import report

    files = _inputs(Path(args.images))
    out = Path(args.out)
    sources = {f.resolve() for f in files}
    for f in files:
        if (out / f"{f.stem}.png").resolve() in sources:
            raise WorkbenchError(f"--out {out} would overwrite the source image {f.name}; "
                                 "choose another output folder")
    failed: list[str] = []
    seen: dict[str, Path] = {}
    unique: list[Path] = []
    for f in files:  # a.png and a.jpg would write the same mask: decided before sharing out
        if f.stem in seen:
            failed.append(f"{f}: same stem as {seen[f.stem].name}; skipped")
            if ctx.is_main:
                print(f"workbench: skipped {failed[-1]}", file=sys.stderr)
            continue
        seen[f.stem] = f
        unique.append(f)
    mine = unique[ctx.rank::ctx.world_size]
    predictor = Predictor.from_checkpoint(args.model, device=ctx.device, batch_size=args.batch_size,
                                          tile=args.tile, backend=args.backend, threads=args.threads)
    schema = predictor.meta.class_schema()
    if ctx.is_main:
        share = f"; {ctx.world_size} processes, about {len(mine)} each" if ctx.enabled else ""
        print(f"device: {describe_device(ctx.device)}; model: {predictor.meta.arch} / "
              f"{predictor.meta.encoder}, {predictor.meta.num_classes} classes; "
              f"{len(files)} image(s){share}; backend: {predictor.backend_note}", file=sys.stderr)
    mine_failed: list[str] = []

    def decoded() -> Iterator[tuple[Path, np.ndarray]]:
        for f in mine:
            try:
                yield f, read_image(f)
            except InputError as exc:
                mine_failed.append(str(exc))
                print(f"workbench: skipped {exc}", file=sys.stderr)

    written = 0
    with progress_bar("predict", unit="img", disable=not ctx.is_main) as bar:
        for path, pred in predictor.predict_many(decoded()):
            write_mask(out / f"{path.stem}.png", pred.mask, schema)
            if args.confidence:
                atomic_write_bytes(out / f"{path.stem}.conf.png", encode_confidence(pred.confidence))
            written += 1
            report(bar, written + len(mine_failed), len(mine), path.name)
    parts = ctx.gather((written, mine_failed))
    written = sum(w for w, _ in parts)
    failed += [f for _, fs in parts for f in fs]
    if ctx.is_main:
        print(f"wrote {written} mask(s) to {out}" + (f"; {len(failed)} image(s) skipped" if failed else ""))
    return 1 if failed else 0


def _run_project(args: argparse.Namespace, distributed) -> int:
    from workbench.commands.evaluate import parse_version
    from workbench.commands.ranks import open_on_ranks
    from workbench.workflows import predict_project

    if args.model is not None and args.model.lower().endswith(".safetensors"):
        raise WorkbenchError("--model CKPT needs --out DIR (the folder form); for a project give "
                             "--model N, a model version number")
    version = parse_version(args.model)
    ctx = distributed.setup(args.device)
    project = None
    try:
        # The other ranks write cache files only; rank 0 records them.
        project = open_on_ranks(ctx, args.images, state_dir=args.state_dir, create=False, others_open=True)
        with progress_bar("predict", unit="img", disable=not ctx.is_main) as bar:
            outcome = predict_project(project, version=version, only=args.only, device=ctx.device,
                                      on_progress=bar, backend=args.backend, threads=args.threads, distributed_ctx=ctx if ctx.enabled else None)
        if not ctx.is_main:
            return 0
        for name, problem in outcome.problems:
            print(f"workbench: skipped {problem}", file=sys.stderr)
        cached = f"; {outcome.skipped} already cached" if outcome.skipped else ""
        if outcome.backend_note:
            print(f"workbench: backend: {outcome.backend_note}", file=sys.stderr)
        print(f"model v{outcome.version}: predicted {len(outcome.predicted)} image(s) into the project's "
              f"prediction cache{cached}"
              + (f"; {len(outcome.problems)} image(s) skipped" if outcome.problems else ""))
        return 1 if outcome.problems else 0
    finally:
        if project is not None:
            project.close()
        ctx.close()
