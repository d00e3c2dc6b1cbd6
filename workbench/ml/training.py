"""The trainer: one function behind the Retrain button, ``workbench train`` and torchrun.

``train()`` checks the data up front (a bad file fails before any step), decodes it
into RAM when it fits, trains an smp model with cross-entropy (ignore 255; optional
median-frequency class weights and Dice), validates the mIoU after every epoch, keeps
the best checkpoint at ``out_path`` (atomic), and stops after ``epochs`` or the time
budget ``minutes``, whichever comes first. Progress and cancellation follow
``workbench.progress``; under torchrun every rank trains a shard (``distributed``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from workbench import options, progress
from workbench.classes import ClassSchema
from workbench.errors import WorkbenchError
from workbench.metrics import Scores, scores_from_matrix
from workbench.ml import data as D
from workbench.ml import distributed
from workbench.ml.device import choose_threads  # noqa: F401 - re-exported (its home was here)
from workbench.ml.losses import SegmentationLoss
from workbench.progress import CancelToken, ProgressCallback

DEFAULT_EPOCHS = 30
"""Epochs when neither ``epochs`` nor ``minutes`` is given."""

# Settings a user left unset (None) take the recipe of the device type. The CPU recipe
# is the one measured best for a 20-minute CamVid run on 2 cores:
# docs/decisions/0007-cpu-training-recipe.md and 0018-cpu-steps-that-count.md.
CPU_RECIPE: dict[str, Any] = {"batch_size": 8, "crop": 256, "class_weights": True,
                              "class_weight_power": 0.5, "scale": (0.75, 1.25), "color_jitter": 0.0,
                              "schedule": "poly", "loss": "lovasz", "decoder": "slim"}
# The CPU decoder is slim (decision 0018): its steps are 1.6-2x cheaper on 2 cores and learn
# as much per step, so 20 minutes on CamVid bought 774 steps and val mIoU 0.468. The loss is
# cross-entropy + Lovasz-softmax (decision 0019): 0.487-0.519 over 3 seeds in the same 20
# minutes, and the sample project's first Retrain as fast as with cross-entropy alone.
GPU_RECIPE: dict[str, Any] = {"batch_size": 16, "crop": 512, "class_weights": False,
                              "class_weight_power": 0.5, "scale": (0.5, 2.0), "color_jitter": 0.2,
                              "schedule": "poly", "loss": "ce", "decoder": "full"}

SCHEDULES = ("poly", "onecycle")
"""LR schedules: linear warm-up then polynomial decay (0.9) to 0; or one-cycle (warm-up
from lr/25 over the first 10 % of the run, then cosine to lr/1000)."""
DECODERS = ("full", "slim")
"""U-Net decoder widths: smp's (256, 128, 64, 32, 16), or half of that (``models.SLIM_DECODER``).
Only U-Net and U-Net++ have them; for other architectures the recipe's choice is ignored."""
LOSSES = ("ce", "lovasz")
"""Losses: cross-entropy (class-weighted by the recipe); or that plus the Lovasz-softmax."""

SMALL_SET_IMAGES = 32
"""A training set this small (the first Retrains of a project) trains on SMALL_SET_CROP crops
unless crop was set: on the sample project (8 images) 192-pixel crops reached val mIoU 0.5
in 19-20 steps, as 256-pixel ones did (20), at 0.73-0.8x the CPU (BENCHMARKS.md, "First
useful model"). Early stopping is not automatic: with one step per epoch, a patience of 8
ended a 256-pixel run at step 9, on the plateau its val mIoU sits on before it climbs."""
SMALL_SET_CROP = 192
SMALL_SET_EPOCHS = 20
"""... and, unless set, SMALL_SET_EPOCHS epochs instead of 30 (the slim decoder is the CPU
recipe's for every size since decision 0018). With
BatchNorm statistics that keep up (BN_FAST_STEPS) the sample project passes val mIoU 0.5 at
step 16 and levels off at ~0.57 by step 20-24 (BENCHMARKS.md, "First useful model")."""

BN_FAST_STEPS = 100
BN_FAST_MAX = 0.5
"""Fresh runs of fewer than BN_FAST_STEPS steps set BatchNorm momentum to 10 / steps (at most
BN_FAST_MAX) so the running statistics validation uses keep up (``Trainer._fast_bn_statistics``)."""

VAL_EVERY_STEPS = 4
"""Validate at most every this many optimizer steps when epochs are shorter (whole epochs:
every ceil(VAL_EVERY_STEPS / steps per epoch) epochs), and after the last epoch. One
validation of the sample project's 6 val images cost about two training steps; validating
each one-step epoch took 2/3 of a first Retrain (BENCHMARKS.md, "First useful model")."""

VAL_MAX_SHARE = 0.1
VAL_SHARE_MIN_STEPS = 16
"""With epochs of at least VAL_SHARE_MIN_STEPS steps (a CamVid-sized project), an epoch's
validation is skipped while it would take more than VAL_MAX_SHARE of the training time since
the last one (the last epoch is always validated). On CamVid with 2 CPU cores one validation
of the 101 val images costs ~15 s against ~60 s of training per epoch: validating every
epoch spent a fifth of a 20-minute run scoring early epochs that are never the best
(BENCHMARKS.md, recipe trials). Smaller projects keep VAL_EVERY_STEPS: their Retrains are
short and tuned to it."""

EMA_DECAY = 0.99
"""The decay ``--ema`` suggests. Off unless set: on CamVid on 2 CPU cores (20 minutes, slim
decoder) the average's val mIoU climbed without the last weights' swings (+-0.09 between
validations late in the run: 0.468, 0.380, 0.441) and ended where the last weights did
(0.442 against 0.441), but its best validation (0.446) was below the best of the swinging
run (0.468), which keep-the-best picks anyway (BENCHMARKS.md, recipe trials). One run each:
not enough to make it the default."""

FINETUNE_LR_SCALE = 0.2
"""A fine-tuning run starts from ``lr * FINETUNE_LR_SCALE`` unless ``finetune_lr`` is given:
the parent is already near a minimum, and the full fresh-start rate knocked it out of it
(val mIoU 0.42 -> 0.10 mid-run, BENCHMARKS.md "Steady fine-tuning")."""
FINETUNE_WARMUP_FRACTION = 0.2
"""Fine-tuning warms the LR up from 0 over this fraction of the run (at least 5 steps)."""

# Rough training memory per input pixel for smp U-Nets with ResNet encoders in float32
# (activations saved for backward; measured ~1.7 kB/px for resnet18, ~1.9 kB/px for
# resnet34 at crop 256): used to refuse a batch x crop that cannot fit, before starting.
TRAIN_BYTES_PER_PIXEL = 2500
MAX_CROP = 4096
# Upper bounds that no real run reaches but that keep arithmetic and memory sane
# (a seed is multiplied by 1000 for the augmentation stream; a scale of 1000 would
# resize a crop region into a gigapixel image).
MAX_EPOCHS = 100_000
MAX_STEPS = 100_000_000
MAX_MINUTES = 60 * 24 * 366
MAX_BATCH = 65_536
MAX_LR = 10.0
MAX_CLASS_WEIGHT_POWER = 4.0
MAX_SEED = 2**32 - 1
MIN_SCALE, MAX_SCALE = 0.05, 8.0
# Architectures with an image-level pooling branch followed by BatchNorm: in training
# mode that branch sees one value per channel per image, so a batch of 1 fails
# (measured with smp 0.6: deeplabv3, deeplabv3plus, pan, upernet).
POOLED_ARCHS = frozenset({"deeplabv3", "deeplabv3plus", "pan", "upernet"})


@dataclass
class TrainConfig:
    """Training settings; None means "the default for the device" (see CPU_RECIPE)."""

    arch: str = "unet"
    encoder: str | None = None
    encoder_weights: str | None = None
    decoder: str | None = None  # see DECODERS; None = the device recipe
    epochs: int | None = None
    minutes: float | None = None
    batch_size: int | None = None
    crop: int | None = None
    lr: float = 1e-3
    steps: int | None = None  # optimizer-step budget; with epochs / minutes the first reached stops
    schedule: str | None = None  # see SCHEDULES; None = the device recipe
    loss: str | None = None  # see LOSSES; None = the device recipe
    finetune_lr: float | None = None  # peak LR when fine-tuning (init); None = lr * FINETUNE_LR_SCALE
    freeze_bn: bool | None = None  # keep BatchNorm statistics fixed; None = when fine-tuning
    patience: int | None = None  # stop after this many validations without a better val mIoU
    ema: float | None = None  # decay of the weight average validated and saved (EMA_DECAY = 0.99); None/0 = off
    warmup: int | None = None  # linear LR warm-up steps; None = automatic (longer when fine-tuning)
    class_weights: bool | None = None
    class_weight_power: float | None = None  # 1 = median-frequency balancing, 0.5 = its square root
    dice: bool = False
    val_fraction: float = 0.15
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    init: str | Path | None = None
    scale: tuple[float, float] | None = None
    color_jitter: float | None = None
    threads: int | None = None  # CPU only: torch intra-op threads; None = adapt to the machine's load

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse an impossible setting with ``WorkbenchError`` naming it as the CLI flag.

        Runs on construction (CLI, GUI settings and API alike) and again before a run,
        so nothing is decoded or trained with a value that fails later: NaN and infinity
        in any float, a negative seed, a crop the U-Net cannot halve 5 times.
        """
        if not isinstance(self.arch, str) or not self.arch.strip():
            raise WorkbenchError(f"--arch must be an architecture name, got {self.arch!r}")
        from workbench.ml.models import resolve_arch

        resolve_arch(self.arch)  # unknown names list the options
        for name in ("encoder", "encoder_weights"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise WorkbenchError(f"{options.flag(name)} must be a name, got {value!r}")
        from workbench.ml.models import is_weights_file

        if is_weights_file(self.encoder_weights) and not Path(self.encoder_weights).expanduser().is_file():
            raise WorkbenchError(f"--encoder-weights: file not found: {self.encoder_weights} (give none, "
                                 "imagenet, or the path of a .safetensors file of the encoder's weights)")
        if not isinstance(self.device, str) or not self.device.strip():
            raise WorkbenchError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        if self.epochs is not None:
            options.check_int("epochs", self.epochs, minimum=1, maximum=MAX_EPOCHS)
        if self.minutes is not None:
            options.check_float("minutes", self.minutes, above=0, maximum=MAX_MINUTES)
        if self.steps is not None:
            options.check_int("steps", self.steps, minimum=1, maximum=MAX_STEPS)
        if self.schedule is not None:
            options.check_choice("schedule", self.schedule, SCHEDULES)
        if self.loss is not None:
            options.check_choice("loss", self.loss, LOSSES)
        if self.decoder is not None:
            options.check_choice("decoder", self.decoder, DECODERS)
            from workbench.ml.models import DECODER_ARCHS

            if self.decoder == "slim" and resolve_arch(self.arch) not in DECODER_ARCHS:
                raise WorkbenchError(f"--decoder slim applies to unet and unetplusplus, not {self.arch}")
        if self.finetune_lr is not None:
            options.check_float("finetune_lr", self.finetune_lr, above=0, maximum=MAX_LR,
                                what="learning rate")
        if self.freeze_bn is not None and not isinstance(self.freeze_bn, bool):
            raise WorkbenchError(f"--freeze-bn must be true or false, got {self.freeze_bn!r}")
        if self.patience is not None:
            options.check_int("patience", self.patience, minimum=1, maximum=MAX_EPOCHS)
        if self.ema is not None:
            options.check_float("ema", self.ema, minimum=0, maximum=0.9999, what="decay")
        if self.warmup is not None:
            options.check_int("warmup", self.warmup, minimum=1, maximum=MAX_STEPS)
        if self.batch_size is not None:
            options.check_int("batch_size", self.batch_size, minimum=1, maximum=MAX_BATCH)
        if self.crop is not None:
            options.check_int("crop", self.crop, minimum=32, maximum=MAX_CROP)
            if self.crop % 32:
                hint = max(32, int(round(self.crop / 32)) * 32)
                raise WorkbenchError(f"--crop must be a multiple of 32 (the U-Net halves the image "
                                     f"5 times), got {self.crop}; try {hint}")
        options.check_float("lr", self.lr, above=0, maximum=MAX_LR, what="learning rate")
        for name in ("class_weights", "dice"):
            value = getattr(self, name)
            if not (isinstance(value, bool) or (value is None and name == "class_weights")):
                raise WorkbenchError(f"{options.flag(name)} must be true or false, got {value!r}")
        if self.class_weight_power is not None:
            options.check_float("class_weight_power", self.class_weight_power, minimum=0,
                          maximum=MAX_CLASS_WEIGHT_POWER)
        options.check_float("val_fraction", self.val_fraction, minimum=0, below=1)
        options.check_int("seed", self.seed, minimum=0, maximum=MAX_SEED)
        if self.workers is not None:
            options.check_int("workers", self.workers, minimum=0)
        if self.threads is not None:
            options.check_int("threads", self.threads, minimum=1)
        if self.init is not None and not isinstance(self.init, (str, Path)):
            raise WorkbenchError(f"--init must be a checkpoint path, got {self.init!r}")
        if self.scale is not None:
            if not isinstance(self.scale, (tuple, list)) or len(self.scale) != 2:
                raise WorkbenchError(f"--scale must be two numbers (low, high), got {self.scale!r}")
            lo = options.check_float("scale", self.scale[0], minimum=MIN_SCALE, maximum=MAX_SCALE,
                               what="its low end")
            hi = options.check_float("scale", self.scale[1], minimum=MIN_SCALE, maximum=MAX_SCALE,
                               what="its high end")
            if lo > hi:
                raise WorkbenchError(f"--scale must be low <= high, got {self.scale!r}")
        if self.color_jitter is not None:
            options.check_float("color_jitter", self.color_jitter, minimum=0, maximum=1)

    def within_machine(self) -> tuple["TrainConfig", list[str]]:
        """(a copy with ``workers`` and ``threads`` capped to this machine's cores, notes saying so).

        Too many is not an error but a waste: a note, not a refusal.
        """
        workers, w_note = options.cap_to_cores("workers", self.workers, unit="loader processes")
        threads, t_note = options.cap_to_cores("threads", self.threads, unit="threads")
        notes = [n for n in (w_note, t_note) if n]
        if not notes:
            return self, []
        return dataclasses.replace(self, workers=workers, threads=threads), notes

    def resolved(self, device: torch.device) -> "TrainConfig":
        """A copy with every unset setting filled from the device's recipe."""
        recipe = CPU_RECIPE if device.type == "cpu" else GPU_RECIPE
        changes = {k: v for k, v in recipe.items() if getattr(self, k) is None}
        if changes.get("decoder") == "slim" and decoder_channels(self.arch, "slim") is None:
            changes["decoder"] = "full"   # only U-Nets have decoder widths to slim
        if self.epochs is None and self.minutes is None and self.steps is None:
            changes["epochs"] = DEFAULT_EPOCHS
        return dataclasses.replace(self, **changes)


def decoder_channels(arch: str, decoder: str | None) -> tuple[int, ...] | None:
    """The decoder widths ``decoder`` ("slim"/"full"/None) means for ``arch`` (None = smp's default)."""
    from workbench.ml.models import DECODER_ARCHS, SLIM_DECODER, resolve_arch

    if decoder == "slim" and resolve_arch(arch) in DECODER_ARCHS:
        return SLIM_DECODER
    return None


@dataclass
class TrainResult:
    """What a training run produced: the best checkpoint and its history."""

    checkpoint: Path
    best_miou: float | None
    history: list[dict] = field(default_factory=list)
    cancelled: bool = False
    epochs_done: int = 0
    stopped_by: str = "epochs"  # "epochs", "steps", "time", "patience", "cancel"
    steps: int = 0
    notes: list[str] = field(default_factory=list)  # what the run decided for the user (hold-out, ...)


class _WeightAverage:
    """An exponential moving average of a model's weights and buffers (a copy kept beside it)."""

    def __init__(self, net: torch.nn.Module, decay: float) -> None:
        import copy

        self.model = copy.deepcopy(net)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        """Fold the current weights in; the decay warms up so early weights do not linger."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, cur in zip(self.model.state_dict().values(), net.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(cur.detach(), alpha=1 - d)
            else:
                avg.copy_(cur)      # counters (BatchNorm's num_batches_tracked)


class _OutOfMemory(Exception):
    """A device OOM inside the loop, carried out so the caller can retry smaller."""


def train(config: TrainConfig, schema: ClassSchema, train_pairs: Sequence[tuple[Path, Path]],
          val_pairs: Sequence[tuple[Path, Path]], out_path: str | Path, *,
          on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
          parent: str | int | None = None) -> TrainResult:
    """Train (or fine-tune ``config.init``) and keep the best checkpoint at ``out_path``.

    Refuses with ``WorkbenchError`` before training when there is nothing to train on,
    only one class is labelled, a file is bad or the batch cannot fit in memory. A
    cancelled run returns ``TrainResult(cancelled=True)`` with a usable checkpoint.
    """
    start = time.monotonic()
    ctx = distributed.setup(config.device)
    threads_before = torch.get_num_threads()
    try:
        trainer = _Trainer(config, schema, ctx, Path(out_path), on_progress if ctx.is_main else None,
                           cancel, parent, start)
        return trainer.run(list(train_pairs), list(val_pairs))
    finally:
        torch.set_num_threads(threads_before)
        ctx.close()


class _Trainer:
    def __init__(self, config: TrainConfig, schema: ClassSchema, ctx: distributed.DistContext,
                 out_path: Path, on_progress: ProgressCallback | None, cancel: CancelToken | None,
                 parent: str | int | None, start: float) -> None:
        self.ctx = ctx
        self.device = ctx.device
        self.cfg, self.machine_notes = config.resolved(self.device).within_machine()
        self.user_cfg = config  # what was set, before the device recipe filled the rest
        self.schema = schema
        self.K = schema.num_classes
        self.out_path = out_path
        self.on_progress = on_progress
        self.cancel = cancel
        self.parent = parent
        self.start = start
        self.cpu_start = time.process_time()
        self.budget_s = self.cfg.minutes * 60.0 if self.cfg.minutes is not None else None
        self.time_units = self.cfg.minutes is not None and config.epochs is None and config.steps is None
        self.fine_tuning = self.cfg.init is not None
        self._threads_checked = 0.0

    # ----- preparation ----------------------------------------------------------------
    def _check_settings(self) -> None:
        c = self.cfg
        c.validate()  # again: the resolved recipe, and fields changed after construction
        need = c.batch_size * c.crop * c.crop * TRAIN_BYTES_PER_PIXEL
        if self.device.type == "cuda":
            need //= 2  # bf16 activations
            have = torch.cuda.get_device_properties(self.device).total_memory
            where = "GPU memory"
        else:
            have = _physical_memory()
            where = "RAM"
        if have and need > 0.9 * have:
            raise WorkbenchError(
                f"batch {c.batch_size} x crop {c.crop}x{c.crop} needs about {need / 2**30:.1f} GiB of "
                f"{where} to train but this machine has {have / 2**30:.1f} GiB; use a smaller "
                "--batch-size or --crop")

    def _check_batch_norm(self, batch: int, n_train: int | None) -> None:
        """Refuse a batch x crop whose BatchNorm layers would see one value per channel.

        In training mode BatchNorm needs more than one value per channel: with batch 1
        at crop 32 the deepest feature map is 1 x 1 ("Expected more than 1 value per
        channel when training"), and architectures that pool the whole image fail at
        batch 1 whatever the crop. Refused before training: ``n_train=None`` checks the
        option itself (before any data is decoded); a count checks the batch the loader
        will really use (never more than the training images per process).
        """
        per_rank = math.ceil(n_train / max(1, self.ctx.world_size)) if n_train is not None else batch
        effective = max(1, min(batch, per_rank))
        if effective >= 2:
            return
        fewer = (f" (there are only {n_train} training image(s), so batches hold {effective})"
                 if effective < batch else "")
        arch = self.cfg.arch.strip().lower()
        from workbench.ml.models import ARCHITECTURE_ALIASES

        arch = ARCHITECTURE_ALIASES.get(arch, arch)
        if arch in POOLED_ARCHS:
            raise WorkbenchError(
                f"--batch-size {batch}{fewer}: {arch} pools the whole image before a BatchNorm "
                "layer, which needs at least 2 images per batch to train; use --batch-size 2 or more "
                "(with at least 2 training images) or another --arch")
        if (self.cfg.crop // 32) ** 2 * effective < 2:
            raise WorkbenchError(
                f"--batch-size {batch}{fewer} with --crop {self.cfg.crop}: the deepest feature map "
                "is 1 x 1, and BatchNorm needs more than one value per channel to train; use "
                "--crop 64 or more, or --batch-size 2 or more")

    def _split(self, train_pairs: list, val_pairs: list) -> tuple[list, list, str]:
        if not train_pairs:
            raise WorkbenchError("no labelled images in the train split: label or verify some images first")
        if val_pairs:
            return train_pairs, val_pairs, ""
        n = len(train_pairs)
        if n < 2 or self.cfg.val_fraction == 0:
            return train_pairs, list(train_pairs), ("no validation images: validating on the training "
                                                    "images (scores will be optimistic)")
        n_val = min(n - 1, max(1, int(round(self.cfg.val_fraction * n))))
        order = np.random.default_rng(self.cfg.seed).permutation(n)
        val = [train_pairs[i] for i in sorted(order[:n_val])]
        train = [train_pairs[i] for i in sorted(order[n_val:])]
        return train, val, (f"no validation images given: holding out {n_val} of {n} training images "
                            f"for validation (not trained on; --val-fraction 0 validates on the "
                            f"training images instead)")

    def _small_set(self, n_train: int) -> None:
        """A first model fast on a CPU: smaller crops and 20 epochs (what the user did not set)."""
        if self.device.type != "cpu" or n_train > SMALL_SET_IMAGES:
            return
        chosen = []
        u = self.user_cfg
        if u.crop is None and self.cfg.crop > SMALL_SET_CROP:
            self.cfg = dataclasses.replace(self.cfg, crop=SMALL_SET_CROP)
            chosen.append(f"{SMALL_SET_CROP}-pixel crops")
        if u.epochs is None and u.minutes is None and u.steps is None and self.cfg.epochs == DEFAULT_EPOCHS:
            self.cfg = dataclasses.replace(self.cfg, epochs=SMALL_SET_EPOCHS)
            chosen.append(f"{SMALL_SET_EPOCHS} epochs")
        if chosen:
            self.notes.append(f"small training set ({n_train} images): " + ", ".join(chosen))

    def _report(self, message: str = "", **info: Any) -> None:
        if self.on_progress is None:
            return
        elapsed = time.monotonic() - self.start
        if self.time_units:
            done, total = int(min(elapsed, self.budget_s)), int(round(self.budget_s))
        else:
            done, total = self.global_step, self.total_steps
        progress.report(self.on_progress, done, total, message, **info)

    def _elapsed(self) -> float:
        return time.monotonic() - self.start

    # ----- the run ----------------------------------------------------------------------
    def run(self, train_pairs: list, val_pairs: list) -> TrainResult:
        self.global_step, self.total_steps = 0, None
        self._check_settings()
        train_pairs, val_pairs, split_note = self._split(train_pairs, val_pairs)
        self.notes = list(self.machine_notes) + ([split_note] if split_note else [])
        self._small_set(len(train_pairs))
        self._check_batch_norm(self.cfg.batch_size, None)  # the option itself, before decoding
        report_fn = self.on_progress
        train_infos = D.check_pairs(train_pairs, on_progress=report_fn, cancel=self.cancel)
        val_infos = D.check_pairs(val_pairs, on_progress=report_fn, cancel=self.cancel)
        total_bytes = D.decoded_bytes(train_infos) + D.decoded_bytes(val_infos)
        cache = total_bytes <= D.CACHE_LIMIT_BYTES
        self.train_store = D.PairStore(train_infos, self.schema, cache=cache)
        self.val_store = D.PairStore(val_infos, self.schema, cache=cache)
        self.train_store.preload(on_progress=report_fn, cancel=self.cancel, message="decoding training images")
        self.val_store.preload(on_progress=report_fn, cancel=self.cancel, message="decoding validation images")
        counts, image_pixels = D.class_pixel_counts(self.train_store, self.K, cancel=self.cancel)
        present = np.flatnonzero(counts)
        if counts.sum() == 0:
            raise WorkbenchError("the training labels hold no labelled pixels (all are void or "
                                 "not labelled): label some pixels first")
        if len(present) < 2:
            name = self.schema.names[int(present[0])]
            raise WorkbenchError(f"every labelled pixel in the training images is class '{name}': "
                                 "nothing to learn; label at least two classes")
        self.class_counts = counts
        # Now with the batch the loader will really use (never more than the images); after the
        # label checks, whose message matters more when both apply.
        self._check_batch_norm(self.cfg.batch_size, len(train_pairs))
        self.weights = (D.median_frequency_weights(counts, image_pixels, power=self.cfg.class_weight_power)
                        if self.cfg.class_weights else None)
        self.workers = (self.cfg.workers if self.cfg.workers is not None
                        else D.auto_workers(self.device.type, cache))
        self.cached = cache

        batch = self.cfg.batch_size
        retried = False
        while True:
            try:
                return self._fit(batch)
            except _OutOfMemory as exc:
                if retried or batch <= 1 or self.ctx.enabled:
                    raise WorkbenchError(
                        f"out of {self.device.type.upper()} memory training with batch {batch} at crop "
                        f"{self.cfg.crop}: use a smaller --batch-size or --crop") from exc.__cause__
                retried = True
                batch //= 2
                try:
                    self._check_batch_norm(batch, len(train_pairs))
                except WorkbenchError:
                    raise WorkbenchError(
                        f"out of {self.device.type.upper()} memory training with batch {batch * 2} at crop "
                        f"{self.cfg.crop}: use a smaller --crop or a lighter --encoder") from exc.__cause__
                self.notes.append(f"out of memory: retrying with batch size {batch}")
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def _build_model(self) -> tuple[torch.nn.Module, str, str, Any]:
        from workbench.ml.models import ModelConfig, build_model, default_encoder

        cfg = self.cfg
        if cfg.init is not None:
            from workbench.ml.checkpoint import load_checkpoint

            model, meta = load_checkpoint(cfg.init, schema=self.schema, adapt_head=True, device="cpu")
            msg = f"fine-tuning {Path(cfg.init).name} ({meta.arch}, {meta.encoder})"
            adapted = meta.train.get("adapted_head")
            if adapted:
                msg += (f"; its classes differ ({', '.join(adapted['from_classes'])}): new output "
                        f"head for {', '.join(adapted['to_classes'])}")
            self.notes.append(msg)
            self.decoder_channels = tuple(meta.decoder_channels) if meta.decoder_channels else None
            return model, meta.arch, meta.encoder, meta
        encoder = cfg.encoder or default_encoder(self.device)
        self.decoder_channels = decoder_channels(cfg.arch, cfg.decoder)
        model = build_model(ModelConfig(cfg.arch, encoder, cfg.encoder_weights,
                                        decoder_channels=self.decoder_channels), self.K)
        return model, cfg.arch, encoder, None

    def _loaders(self, batch: int) -> tuple[DataLoader, DataLoader, DistributedSampler | None, int]:
        cfg, ctx = self.cfg, self.ctx
        n = len(self.train_store)
        per_rank = math.ceil(n / ctx.world_size)
        batch = max(1, min(batch, per_rank))
        augment = D.Augment(cfg.crop, tuple(cfg.scale), hflip=True, color_jitter=cfg.color_jitter or 0.0)
        train_ds = D.TrainDataset(self.train_store, augment)
        sampler = None
        gen = torch.Generator().manual_seed(cfg.seed + 7919 * ctx.rank)
        if ctx.enabled:
            sampler = DistributedSampler(train_ds, num_replicas=ctx.world_size, rank=ctx.rank,
                                         shuffle=True, seed=cfg.seed, drop_last=False)
        common: dict[str, Any] = {"num_workers": self.workers, "pin_memory": self.device.type == "cuda"}
        if self.workers > 0:
            common["persistent_workers"] = True
        train_loader = DataLoader(train_ds, batch_size=batch, shuffle=sampler is None, sampler=sampler,
                                  drop_last=True, generator=gen, **common)
        val_ds = D.ValDataset(self.val_store)
        if ctx.enabled:
            val_ds = Subset(val_ds, list(range(ctx.rank, len(val_ds), ctx.world_size)))
        val_batch = max(1, min(batch, 4 if self.device.type == "cpu" else batch))
        val_loader = DataLoader(val_ds, batch_size=val_batch, shuffle=False, collate_fn=D.pad_collate,
                                **common)
        return train_loader, val_loader, sampler, batch

    def _fit(self, batch_size: int) -> TrainResult:
        cfg, ctx, dev = self.cfg, self.ctx, self.device
        torch.manual_seed(cfg.seed)  # same initial weights on every rank and every run
        model, arch, encoder, init_meta = self._build_model()
        self.mean = tuple(init_meta.mean) if init_meta is not None else _imagenet()[0]
        self.std = tuple(init_meta.std) if init_meta is not None else _imagenet()[1]
        self.arch, self.encoder = arch, encoder
        model = model.to(dev)
        if dev.type in ("cuda", "cpu"):
            # NHWC: on the 2-core CPU box a U-Net/resnet18 step of 8 x 256² takes 1.3 s against
            # 1.7 s in NCHW, and validation 0.58 s against 0.88 s per 4 x 384 x 480 (resnet18,
            # mobilenet_v2 and efficientnet-b0 all gain; BENCHMARKS.md, recipe trials).
            model = model.to(memory_format=torch.channels_last)
        net = model
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(net, device_ids=[dev.index] if dev.type == "cuda" else None)
        # Augmentation draws from the global RNG: a different stream per rank.
        torch.manual_seed(cfg.seed * 1000 + 1 + ctx.rank)
        train_loader, val_loader, sampler, batch = self._loaders(batch_size)
        self.batch = batch
        self.val_loader = val_loader
        weights = torch.from_numpy(self.weights) if self.weights is not None else None
        criterion = SegmentationLoss(weights, dice=cfg.dice, lovasz=cfg.loss == "lovasz").to(dev)
        peak_lr = self._peak_lr()
        optimizer = torch.optim.Adam(model.parameters(), lr=peak_lr)
        steps_per_epoch = len(train_loader)
        max_epochs = cfg.epochs if cfg.epochs is not None else 10**9
        totals = [t for t in (steps_per_epoch * cfg.epochs if cfg.epochs is not None else None, cfg.steps)
                  if t is not None]
        self.total_steps = min(totals) if totals else None
        amp = dev.type == "cuda" and torch.cuda.is_bf16_supported()
        self.warmup = self._warmup_steps()
        self.freeze_bn = cfg.freeze_bn if cfg.freeze_bn is not None else self.fine_tuning
        self._fast_bn_statistics(model)
        ema = _WeightAverage(net, float(cfg.ema)) if cfg.ema else None
        if ema is not None:
            self.notes.append(f"validating and saving an average of the weights (decay {cfg.ema:g})")
        if self.fine_tuning:
            self.notes.append(f"fine-tuning from learning rate {peak_lr:g} with a {self.warmup}-step warm-up"
                              + ("; BatchNorm statistics kept from the parent" if self.freeze_bn else ""))
        since_best = 0
        # Epochs of one or two steps (a small project) would spend most of the run validating
        # (on the sample project one validation costs ~2 training steps): validate every
        # val_every epochs, and always after the last one.
        val_every = max(1, math.ceil(VAL_EVERY_STEPS / max(1, steps_per_epoch)))
        steps_unscored, epochs_done = 0, 0
        loss_sum, loss_n = 0.0, 0

        self.history: list[dict] = []
        best: float | None = None
        best_metrics: dict = {}
        saved = False
        stopped_by = "epochs"
        self.global_step = 0
        train_px = 0
        train_time = 0.0
        val_time_est: float | None = None
        train_time_at_val = 0.0
        epoch = 0
        for note in self.notes:
            self._report(note, phase="setup")
        self._adapt_threads(initial=True)

        for epoch in range(1, max_epochs + 1):
            if sampler is not None:
                sampler.set_epoch(epoch)
            self._train_mode(model)
            images_seen = 0   # (loss_sum, loss_n run until the next validation records them)
            t_epoch = time.monotonic()
            stop_code = 0
            batches = self._batches(train_loader)
            step = 0
            while True:
                # Stop decisions are reduced over ranks so all leave the loop together.
                local = 0
                if self.cancel is not None and self.cancel.cancelled:
                    local = 2
                elif cfg.steps is not None and self.global_step >= cfg.steps:
                    local = 3
                elif self.budget_s is not None:
                    est = val_time_est if val_time_est is not None else self._guess_val_time(train_px, train_time)
                    if self._elapsed() + est >= self.budget_s:
                        local = 1
                stop_code = ctx.max_code(local)
                if stop_code:
                    break
                self._adapt_threads()
                t0 = time.monotonic()
                try:
                    images, targets = next(batches)
                except StopIteration:
                    break
                step += 1
                lr = self._lr(peak_lr, self._progress_fraction(self.global_step, steps_per_epoch))
                for group in optimizer.param_groups:
                    group["lr"] = lr
                try:
                    loss = self._step(model, criterion, optimizer, images, targets, amp)
                except torch.OutOfMemoryError as exc:
                    del batches
                    raise _OutOfMemory() from exc
                except ValueError as exc:
                    if "more than 1 value per channel" not in str(exc):
                        raise
                    # An architecture this check does not know yet: the same sentence, not a traceback.
                    raise WorkbenchError(
                        f"{self.arch} cannot train with batch {images.shape[0]} at crop {cfg.crop}: "
                        "BatchNorm needs more than one value per channel; use --batch-size 2 or more, "
                        "or a larger --crop") from None
                self.global_step += 1
                if ema is not None:
                    ema.update(net)
                dt = time.monotonic() - t0
                train_time += dt
                train_px += images.shape[0] * images.shape[2] * images.shape[3]
                images_seen += images.shape[0]
                loss_sum += loss
                loss_n += 1
                ips = images_seen / max(time.monotonic() - t_epoch, 1e-9)
                self._report(f"epoch {epoch}" + (f"/{cfg.epochs}" if cfg.epochs else ""),
                             phase="train", epoch=epoch, epochs=cfg.epochs or 0, step=step,
                             steps=steps_per_epoch, loss=loss_sum / loss_n, lr=lr,
                             eta_s=self._eta(epoch, step, steps_per_epoch, train_time, val_time_est),
                             best_miou=best,
                             images_per_s=ips * ctx.world_size)
            del batches
            if stop_code and step == 0 and saved:
                # Stopped at an epoch boundary with a checkpoint already saved: nothing new to score.
                stopped_by = _STOP_NAMES[stop_code]
                break
            steps_unscored += step
            if not stop_code:
                epochs_done += 1
            last = (epoch >= max_epochs or stop_code
                    or (cfg.steps is not None and self.global_step >= cfg.steps))
            if saved and not last and epoch % val_every:
                continue   # a short epoch: validate every val_every epochs (see VAL_EVERY_STEPS)
            if (saved and not last and steps_per_epoch >= VAL_SHARE_MIN_STEPS and val_time_est is not None
                    and val_time_est > VAL_MAX_SHARE * (train_time - train_time_at_val + val_time_est)):
                continue   # validation would take more than VAL_MAX_SHARE of the time: next epoch
            self._report("validating", phase="validate", epoch=epoch, epochs=cfg.epochs or 0)
            t_val = time.monotonic()
            judged = ema.model if ema is not None else net   # what is validated is what is saved
            ctx.broadcast_buffers(judged)
            scores = self._validate(judged, amp)
            val_time_est = time.monotonic() - t_val
            train_time_at_val = train_time
            mean_loss = ctx.mean_float(loss_sum / loss_n if loss_n else 0.0) if (loss_n or ctx.enabled) else None
            record = {"epoch": epoch, "steps": steps_unscored, "loss": mean_loss, "val_miou": scores.miou,
                      "val_pixel_accuracy": scores.pixel_accuracy, "time_s": round(self._elapsed(), 2),
                      # CPU seconds of this process: on a shared machine the wall time measures the
                      # load, this measures the run (benchmarks/bench_first_model.py).
                      "cpu_s": round(time.process_time() - self.cpu_start, 2),
                      "lr": optimizer.param_groups[0]["lr"], "partial": bool(stop_code)}
            self.history.append(record)
            steps_unscored, loss_sum, loss_n = 0, 0.0, 0
            miou = scores.miou if scores.miou is not None else 0.0
            if best is None or miou > best or not saved:
                since_best = 0
                best = miou
                best_metrics = {"val_miou": scores.miou, "val_pixel_accuracy": scores.pixel_accuracy,
                                "per_class_iou": scores.per_class_iou, "epoch": epoch,
                                "val_images": len(self.val_store), "val_pixels": scores.pixels}
                if ctx.is_main:
                    self._save(judged, best_metrics)
                saved = True
                ctx.barrier()
            else:
                since_best += 1
            self._report(f"epoch {epoch}: val mIoU {miou:.3f}", phase="validate", epoch=epoch,
                         epochs=cfg.epochs or 0, step=step, steps=steps_per_epoch, loss=mean_loss,
                         val_miou=miou, val_pixel_accuracy=scores.pixel_accuracy or 0.0,
                         best_miou=best, eta_s=self._eta(epoch, steps_per_epoch, steps_per_epoch,
                                                         train_time, val_time_est),
                         images_per_s=(train_px / (cfg.crop ** 2)) / max(train_time, 1e-9) * ctx.world_size)
            if stop_code:
                stopped_by = _STOP_NAMES[stop_code]
                break
            if cfg.steps is not None and self.global_step >= cfg.steps:
                stopped_by = "steps"
                break
            if cfg.patience is not None and since_best >= cfg.patience:
                stopped_by = "patience"
                self._report(f"stopping early: val mIoU has not improved for {since_best} validation(s)",
                             phase="setup")
                break
        self._report("done", phase="done", epoch=epoch, epochs=cfg.epochs or 0,
                     best_miou=best)
        return TrainResult(self.out_path, best, self.history, cancelled=stopped_by == "cancel",
                           epochs_done=epochs_done,
                           stopped_by=stopped_by, steps=self.global_step, notes=list(self.notes))

    def _peak_lr(self) -> float:
        """The largest LR of the run: ``lr``, or the lower fine-tuning rate when starting from ``init``."""
        cfg = self.cfg
        if not self.fine_tuning:
            return cfg.lr
        return cfg.finetune_lr if cfg.finetune_lr is not None else cfg.lr * FINETUNE_LR_SCALE

    def _warmup_steps(self) -> int:
        """Linear warm-up length: longer when fine-tuning, so Adam's first (largest) steps are small."""
        total = self.total_steps
        if self.cfg.warmup is not None:
            return self.cfg.warmup
        if self.fine_tuning:
            return max(5, int(FINETUNE_WARMUP_FRACTION * total)) if total else 30
        # A short warm-up keeps Adam's first steps from wrecking fresh BatchNorm stats.
        return max(1, min(50, total // 30)) if total else 30

    def _lr(self, peak: float, frac: float) -> float:
        """The LR for the next step at run fraction ``frac`` (0..1) under the configured schedule."""
        frac = min(max(frac, 0.0), 0.999)
        if self.cfg.schedule == "onecycle" and not self.fine_tuning:
            rise = 0.1
            if frac < rise:
                return peak / 25 + (peak - peak / 25) * frac / rise
            t = (frac - rise) / (1 - rise)
            low = peak / 1000
            return low + (peak - low) * 0.5 * (1 + math.cos(math.pi * t))
        warm = min(1.0, (self.global_step + 1) / self.warmup)
        return peak * warm * (1.0 - frac) ** 0.9

    def _fast_bn_statistics(self, model: torch.nn.Module) -> None:
        """A short run from scratch: BatchNorm running statistics that keep up with the weights.

        Validation (and the saved model) normalise with the running averages; at PyTorch's
        momentum of 0.1 they still hold ~30 % of their initial (0, 1) after 12 steps, so a
        30-step first model predicted one class on val for its first dozen steps whatever it
        had learnt (BENCHMARKS.md, "First useful model"). Runs of fewer than BN_FAST_STEPS
        steps use momentum 10 / steps (at most BN_FAST_MAX); longer ones keep 0.1.
        """
        total = self.total_steps
        if self.fine_tuning or not total or total >= BN_FAST_STEPS:
            return
        momentum = min(BN_FAST_MAX, 10.0 / total)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = momentum

    def _train_mode(self, model: torch.nn.Module) -> None:
        """Training mode; with ``freeze_bn`` the BatchNorm layers keep their running statistics.

        A fine-tuning batch of a few crops from a few images gives noisy batch statistics; in
        training mode they would both normalise the step and overwrite the parent's
        running averages, which validation then uses. Frozen, BatchNorm normalises with the
        parent's statistics (its affine weights still learn).
        """
        model.train()
        if self.freeze_bn:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _adapt_threads(self, initial: bool = False) -> None:
        """On the CPU, size the thread team to the free cores (re-checked every 30 s)."""
        if self.device.type != "cpu":
            return
        now = time.monotonic()
        if self.cfg.threads is not None:
            if initial:
                torch.set_num_threads(self.cfg.threads)
                self.threads_used = {self.cfg.threads}
            return
        if not initial and now - self._threads_checked < 30.0:
            return
        self._threads_checked = now
        busy = 0 if initial else torch.get_num_threads() * max(1, self.ctx.world_size)
        n = max(1, choose_threads(busy) // max(1, self.ctx.world_size))
        if initial:
            self.threads_used = set()
        if n != torch.get_num_threads() or initial:
            torch.set_num_threads(n)
        self.threads_used.add(n)

    def _batches(self, loader: DataLoader) -> Iterator:
        it = iter(loader)
        while True:
            try:
                yield next(it)
            except StopIteration:
                return
            except WorkbenchError:
                raise
            except Exception as exc:  # a worker re-raises our InputError wrapped in its traceback
                raise _worker_error(exc) from None

    def _step(self, model: torch.nn.Module, criterion: SegmentationLoss, optimizer: torch.optim.Optimizer,
              images: torch.Tensor, targets: torch.Tensor, amp: bool) -> float:
        dev = self.device
        x = D.normalise(images.to(dev, non_blocking=True), self.mean, self.std)
        if dev.type in ("cuda", "cpu"):
            x = x.contiguous(memory_format=torch.channels_last)
        y = targets.to(dev, non_blocking=True)
        ctxm = torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
        with ctxm:
            logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def _validate(self, net: torch.nn.Module, amp: bool) -> Scores:
        was_training = net.training
        net.eval()
        ctxm = torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
        from workbench.metrics import ConfusionMatrix

        cm = ConfusionMatrix(self.K)
        try:
            for images, targets in self._batches(self.val_loader):
                x = D.normalise(images.to(self.device), self.mean, self.std)
                if self.device.type in ("cuda", "cpu"):
                    x = x.contiguous(memory_format=torch.channels_last)
                with ctxm:
                    pred = net(x).argmax(1).to(torch.uint8).cpu().numpy()
                for p, t in zip(pred, targets.numpy()):
                    cm.update(p, t, ignore_values=(D.IGNORE,))
        except torch.OutOfMemoryError as exc:
            raise _OutOfMemory() from exc
        finally:
            net.train(was_training)
        matrix = self.ctx.sum_array(cm.matrix)
        return scores_from_matrix(matrix)

    def _save(self, net: torch.nn.Module, metrics: dict) -> None:
        from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint

        settings = {k: (str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v))
                    for k, v in dataclasses.asdict(self.cfg).items()}
        settings.update(arch=self.arch, encoder=self.encoder, device=str(self.device),
                        world_size=self.ctx.world_size, batch_size=self.batch,
                        steps=self.global_step, cached=self.cached, workers=self.workers,
                        threads_used=sorted(getattr(self, "threads_used", [])),
                        class_weight_values=self.weights.tolist() if self.weights is not None else None)
        parent = self.parent if self.parent is not None else (Path(self.cfg.init).name if self.cfg.init else None)
        meta = CheckpointMeta(
            arch=self.arch, encoder=self.encoder, num_classes=self.K, schema=self.schema.to_dict(),
            mean=list(self.mean), std=list(self.std), train=settings, history=list(self.history),
            metrics=dict(metrics), parent=str(parent) if parent is not None else None,
            trained_on=[p.image.name for p in self.train_store.infos],
            decoder_channels=list(self.decoder_channels) if self.decoder_channels else None)
        save_checkpoint(self.out_path, net, meta)

    # ----- schedule and estimates --------------------------------------------------------
    def _progress_fraction(self, step: int, steps_per_epoch: int) -> float:
        """How far through the run we are (0..1): drives the polynomial LR decay."""
        fracs = []
        if self.total_steps:
            fracs.append(step / self.total_steps)
        if self.budget_s is not None:
            fracs.append(self._elapsed() / self.budget_s)
        return max(fracs) if fracs else 0.0

    def _guess_val_time(self, train_px: int, train_time: float) -> float:
        # Before the first validation: a forward pass costs about a third of a training
        # step per pixel; validation images are whole (padded) images.
        if train_px == 0 or train_time <= 0:
            return 0.0
        val_px = sum(h * w for h, w in (i.hw for i in self.val_store.infos)) / self.ctx.world_size
        return 1.2 * val_px / (3.0 * train_px / train_time)

    def _eta(self, epoch: int, step: int, steps_per_epoch: int, train_time: float,
             val_time: float | None) -> float:
        if self.time_units or self.total_steps is None:
            return max(0.0, self.budget_s - self._elapsed())
        per_step = train_time / max(self.global_step, 1)
        remaining_steps = max(0, self.total_steps - self.global_step)
        if self.cfg.epochs is not None:
            remaining_vals = self.cfg.epochs - epoch + (1 if step < steps_per_epoch else 0)
        else:  # a step budget: one validation per (possibly partial) epoch left
            left_in_epoch = steps_per_epoch - step if step < steps_per_epoch else 0
            remaining_vals = (1 if left_in_epoch else 0) + math.ceil(
                max(0, remaining_steps - left_in_epoch) / max(1, steps_per_epoch))
        eta = remaining_steps * per_step + remaining_vals * (val_time or 0.0)
        if self.budget_s is not None:
            eta = min(eta, max(0.0, self.budget_s - self._elapsed()))
        return eta


_STOP_NAMES = {1: "time", 2: "cancel", 3: "steps"}


def _imagenet() -> tuple[tuple[float, ...], tuple[float, ...]]:
    from workbench.ml.models import IMAGENET_MEAN, IMAGENET_STD

    return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _worker_error(exc: Exception) -> WorkbenchError:
    """Turn a DataLoader worker's re-raised error into a one-line WorkbenchError."""
    text = str(exc)
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        for prefix in ("workbench.errors.InputError: ", "InputError: ",
                       "workbench.errors.WorkbenchError: ", "WorkbenchError: "):
            if line.startswith(prefix):
                return WorkbenchError(line[len(prefix):])
    return WorkbenchError(f"loading training data failed: {text.strip().splitlines()[-1] if text else exc}")
