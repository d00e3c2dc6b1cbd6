"""``workbench predict IMAGES --model CKPT --out DIR``: label masks for images with a model."""

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
        "predict", help="predict label masks for images with a trained model",
        description="Predict a palette PNG label mask (named by image stem, coloured with the "
                    "model's classes) for every image. Large images are predicted in "
                    "overlapping tiles. An unreadable image is reported and skipped; the "
                    "exit status is then 1.",
        epilog="examples:\n"
               "  workbench predict photos/ --model v0003.safetensors --out preds/\n"
               "  workbench predict scan.tif --model v0003.safetensors --out preds/ --confidence",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", metavar="IMAGES", help="an image file or a folder of images")
    p.add_argument("--model", metavar="CKPT", required=True, help="checkpoint (.safetensors)")
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the masks (created)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--batch-size", type=int, default=4, help="images (or tiles) per batch (4)")
    p.add_argument("--tile", type=int, default=1024,
                   help="images larger than this many pixels a side go through tiles (1024)")
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
    """Predict every image, write masks; 1 if some image failed, 0 otherwise."""
    from workbench.atomic import atomic_write_bytes
    from workbench.imageio import read_image
    from workbench.masks import write_mask
    from workbench.ml.device import describe_device, resolve_device
    from workbench.ml.inference import Predictor
    from workbench.progress import report

    options.check_batch_size(args.batch_size)
    options.check_tile(args.tile)
    files = _inputs(Path(args.images))
    out = Path(args.out)
    sources = {f.resolve() for f in files}
    for f in files:
        if (out / f"{f.stem}.png").resolve() in sources:
            raise WorkbenchError(f"--out {out} would overwrite the source image {f.name}; "
                                 "choose another output folder")
    device = resolve_device(args.device)
    predictor = Predictor.from_checkpoint(args.model, device=device, batch_size=args.batch_size,
                                          tile=args.tile)
    schema = predictor.meta.class_schema()
    print(f"device: {describe_device(device)}; model: {predictor.meta.arch} / "
          f"{predictor.meta.encoder}, {predictor.meta.num_classes} classes; "
          f"{len(files)} image(s)", file=sys.stderr)
    failed: list[str] = []
    seen: dict[str, Path] = {}

    def decoded() -> Iterator[tuple[Path, np.ndarray]]:
        for f in files:
            if f.stem in seen:  # a.png and a.jpg would write the same mask
                failed.append(f"{f}: same stem as {seen[f.stem].name}; skipped")
                print(f"workbench: skipped {failed[-1]}", file=sys.stderr)
                continue
            seen[f.stem] = f
            try:
                yield f, read_image(f)
            except InputError as exc:
                failed.append(str(exc))
                print(f"workbench: skipped {exc}", file=sys.stderr)

    written = 0
    with progress_bar("predict", unit="img") as bar:
        for path, pred in predictor.predict_many(decoded()):
            write_mask(out / f"{path.stem}.png", pred.mask, schema)
            if args.confidence:
                atomic_write_bytes(out / f"{path.stem}.conf.png", encode_confidence(pred.confidence))
            written += 1
            report(bar, written + len(failed), len(files), path.name)
    print(f"wrote {written} mask(s) to {out}" + (f"; {len(failed)} image(s) skipped" if failed else ""))
    return 1 if failed else 0
