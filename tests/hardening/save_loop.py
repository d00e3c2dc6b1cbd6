"""Child process for the kill test: saves masks and project state forever, to be SIGKILLed.

Run as ``python save_loop.py FOLDER MODE``. It imports once, prints ``ready``, then
obeys commands read from stdin, one per line:

``run N SEED MAX_MS``  fork N writers one after the other; SIGKILL each after a delay
                       drawn from ``random.Random(SEED)`` in [0, MAX_MS] ms; reply
                       ``done KILLED EXITED TORN`` (EXITED counts writers that ended on
                       their own, which the test treats as a failure; TORN counts
                       kills that left a half-written temp file, i.e. landed mid-save).
``measure K``          fork one writer and let it run unkilled: K saves in the endless
                       modes, the whole change in ``add-class``; reply
                       ``measured READY_MS TOTAL_MS`` (fork to "set up, now saving", and
                       fork to exit). The test draws its kill moments from this: on a busy
                       machine a save takes longer, and a fixed bound in milliseconds
                       would kill every writer before it finished (issue 8.12).
``quit``               exit.

Forking from this already-imported process makes each writer start in about a
millisecond, so hundreds of kills fit in seconds, and every kill lands at an
arbitrary point of a save: inside PNG encoding, the temp-file write, the fsync,
the rename, or an SQLite transaction.

Modes:

- ``masks``: ``workbench.masks.write_mask`` of version A or B of each mask in
  ``FOLDER/labels``.
- ``project``: ``Project.open(FOLDER)``, then ``save_label`` with A/B, ``set_status`` and
  ``save_settings`` in turn.
- ``checkpoint``: ``save_checkpoint`` of version A or B of a small model to
  ``FOLDER/model.safetensors`` (what the trainer does for each new best).
- ``replace-kill``: like ``masks``, but the writer kills itself right before or right
  after ``os.replace`` (the narrowest window of an atomic save).
- ``add-class``: ``Project.add_class`` once, which moves the void class up and
  renumbers every stored label (a change spanning many files).
- ``add-class-cut-N``: the same, killed right after the Nth file rename of the change.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np

from workbench import masks
from workbench.atomic import TEMP_MARKER
from workbench.classes import ClassInfo, ClassSchema

MASK_HW = (96, 128)
_READY_FD: int | None = None  # in a writer: where to say "set up, now saving"
_LIMIT: int | None = None  # in a measured writer: saves to make before exiting (None = forever)
N_MASKS = 6
STATUSES = ("edited", "verified")


def schema() -> ClassSchema:
    """The schema of the kill test's project."""
    return ClassSchema([ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "object", (250, 0, 0)),
                        ClassInfo(2, "other", (0, 250, 0))])


@functools.cache
def version(index: int, which: int) -> np.ndarray:
    """Mask ``index`` in version ``which`` (0 = A, 1 = B): random, so each is recognisable."""
    rng = np.random.default_rng(1000 * index + which)
    mask = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=MASK_HW)
    mask.flags.writeable = False  # cached and shared: nobody may change it
    return mask


def mask_name(index: int) -> str:
    """File name of mask ``index`` (also the stem of its image in project mode)."""
    return f"img {index:02d}"


def _ready() -> None:
    """Tell the parent this writer is set up and about to save (used by half the kills)."""
    global _READY_FD
    if _READY_FD is not None:
        os.write(_READY_FD, b"r")
        os.close(_READY_FD)
        _READY_FD = None


def _count(n: int, start: int) -> None:
    """In a measured writer: exit cleanly once ``_LIMIT`` saves are made."""
    if _LIMIT is not None and n - start >= _LIMIT:
        os._exit(0)


def _write_masks_forever(folder: Path, start: int) -> None:
    sch = schema()
    labels = folder / "labels"
    _ready()
    n = start
    while True:
        _count(n, start)
        i = n % N_MASKS
        masks.write_mask(labels / f"{mask_name(i)}.png", version(i, (n // N_MASKS) % 2), sch)
        n += 1


@functools.cache
def checkpoint_version(which: int) -> tuple[object, object]:
    """(model, meta) of checkpoint version ``which``: fixed weights and a fixed time stamp."""
    import torch

    from workbench.ml.checkpoint import CheckpointMeta

    torch.manual_seed(which)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.Conv2d(64, 96, 3))
    meta = CheckpointMeta(arch="unet", encoder="resnet18", num_classes=3, schema=schema().to_dict(),
                          created="2026-01-01T00:00:00+00:00", metrics={"version": which})
    return model, meta


def _save_checkpoints_forever(folder: Path, start: int) -> None:
    from workbench.ml.checkpoint import save_checkpoint

    _ready()
    n = start
    while True:
        _count(n, start)
        model, meta = checkpoint_version(n % 2)
        save_checkpoint(folder / "model.safetensors", model, meta)
        n += 1


def _save_project_forever(folder: Path, start: int) -> None:
    from workbench.project import Project

    project = Project.open(folder)
    if project.read_only:  # the previous writer's lock must be gone once it is dead
        raise SystemExit("opened read-only: the killed writer's lock was not released")
    ids = {r.stem: r.id for r in project.images()}
    _ready()
    n = start
    while True:
        _count(n, start)
        i = n % N_MASKS
        which = (n // N_MASKS) % 2
        image_id = ids[mask_name(i)]
        project.save_label(image_id, version(i, which), status=STATUSES[which])
        project.set_status([image_id], STATUSES[1 - which])
        project.save_settings({"round": n, "note": "x" * (n % 50)})
        n += 1


def _add_class_once(folder: Path, die_after_replaces: int | None = None) -> None:
    from workbench.project import Project

    if die_after_replaces is not None:  # deterministic crash after the Nth file of the change
        real_replace, done = os.replace, [0]

        def replace_then_maybe_die(src: str, dst: str) -> None:
            real_replace(src, dst)
            done[0] += 1
            if done[0] >= die_after_replaces:
                os.kill(os.getpid(), signal.SIGKILL)

    if die_after_replaces is None:
        # (The cut variant is never killed by the parent, which closes the pipe at once.)
        _ready()
    with Project.open(folder) as project:
        if die_after_replaces is not None:
            os.replace = replace_then_maybe_die  # patched after open: only the change's own writes count
        if project.read_only:
            raise SystemExit("opened read-only: the killed writer's lock was not released")
        project.add_class(f"class {project.schema.num_classes}")
    os._exit(0)  # finished before the kill: counted as "exited", which this mode allows


def _kill_around_replace(folder: Path, start: int, before: bool) -> None:
    real_replace = os.replace

    def replace_then_die(src: str, dst: str) -> None:
        if before:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
        os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace_then_die  # this process only, and it is about to die
    sch = schema()
    i = start % N_MASKS
    masks.write_mask(folder / "labels" / f"{mask_name(i)}.png", version(i, (start // N_MASKS) % 2), sch)


def _writer(folder: Path, mode: str, start: int) -> None:
    try:
        if mode == "masks":
            _write_masks_forever(folder, start)
        elif mode == "project":
            _save_project_forever(folder, start)
        elif mode == "checkpoint":
            _save_checkpoints_forever(folder, start)
        elif mode == "add-class":
            _add_class_once(folder)
        elif mode.startswith("add-class-cut-"):
            _add_class_once(folder, die_after_replaces=int(mode.rsplit("-", 1)[1]))
        elif mode == "replace-kill":
            _kill_around_replace(folder, start, before=start % 2 == 0)
        raise SystemExit(f"unknown mode {mode}")
    except BaseException as exc:  # report, then exit non-zero: the parent counts it
        print(f"writer {os.getpid()} ended: {exc!r}", file=sys.stderr, flush=True)
        os._exit(3)


def _temp_files(folder: Path) -> set[Path]:
    return set(folder.rglob(f"{TEMP_MARKER}*"))


def run(folder: Path, mode: str, n: int, seed: int, max_ms: float) -> tuple[int, int, int]:
    """Fork ``n`` writers in turn and SIGKILL each at a random moment; (killed, exited, torn)."""
    global _READY_FD
    rng = random.Random(seed)
    killed = exited = torn = 0
    temps = _temp_files(folder)
    for k in range(n):
        delay = rng.uniform(0, max_ms) / 1000
        start = rng.randrange(1_000_000)
        # Half the kills count their delay from fork (they can land while the writer opens
        # the project), half from the moment it starts saving (so saves surely happen, even
        # on a slow machine).
        after_ready = mode in ("masks", "project", "checkpoint") and rng.random() < 0.5
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            _READY_FD = ready_w
            _writer(folder, mode, start)
            os._exit(4)
        os.close(ready_w)
        try:
            if after_ready:
                os.read(ready_r, 1)  # b"" if the writer died first: then it is simply reaped
            if mode != "replace-kill" and not mode.startswith("add-class-cut-"):
                time.sleep(delay)  # the random moment of the crash: this is what is tested
                os.kill(pid, signal.SIGKILL)
        finally:
            os.close(ready_r)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            killed += 1
        else:
            exited += 1
        now = _temp_files(folder)
        torn += bool(now - temps)  # a new temp file: this writer died inside a save
        temps = now
    return killed, exited, torn


def measure(folder: Path, mode: str, saves: int) -> tuple[float, float]:
    """One unkilled writer: (ms from fork to ready, ms from fork to its exit)."""
    global _READY_FD, _LIMIT
    ready_r, ready_w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        _READY_FD, _LIMIT = ready_w, saves
        _writer(folder, mode, random.randrange(1_000_000))
        os._exit(4)
    os.close(ready_w)
    try:
        os.read(ready_r, 1)
        t_ready = time.monotonic()
    finally:
        os.close(ready_r)
    _, status = os.waitpid(pid, 0)
    t_end = time.monotonic()
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        raise SystemExit(f"measured writer failed (status {status})")
    return (t_ready - t0) * 1000, (t_end - t0) * 1000


def main() -> None:
    """Serve ``run`` commands from stdin until ``quit``."""
    folder, mode = Path(sys.argv[1]), sys.argv[2]
    # Do the one-time work (mask patterns, PNG encoder import) before forking, so each
    # writer's time goes to saving.
    for i in range(N_MASKS):
        masks.encode_mask(version(i, 0), schema())
        version(i, 1)
    if mode == "checkpoint":
        import torch

        torch.set_num_threads(1)  # no OpenMP pool in a process that forks
        checkpoint_version(0)
        checkpoint_version(1)
    print("ready", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        if parts[0] == "run":
            killed, exited, torn = run(folder, mode, int(parts[1]), int(parts[2]), float(parts[3]))
            print(f"done {killed} {exited} {torn}", flush=True)
        elif parts[0] == "measure":
            ready_ms, total_ms = measure(folder, mode, int(parts[1]))
            print(f"measured {ready_ms:.3f} {total_ms:.3f}", flush=True)


if __name__ == "__main__":
    main()
