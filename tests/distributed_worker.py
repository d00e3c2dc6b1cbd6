"""Run by tests/test_distributed.py under torchrun: `workbench train` as one rank of N.

Wraps the trainer's validation to record a digest of the weights each rank holds, and
the checkpoint writer to record which rank saved, then runs the real CLI. Not a test
module itself (pytest collects only test_*.py).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

from workbench.ml import checkpoint, training


def _digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> int:
    report_dir = Path(os.environ["WB_TEST_REPORT_DIR"])
    rank = os.environ["RANK"]
    original_validate = training._Trainer._validate
    original_save = checkpoint.save_checkpoint

    def validate(self, net, amp):  # type: ignore[no-untyped-def]
        (report_dir / f"rank{rank}.digest").write_text(_digest(net))
        return original_validate(self, net, amp)

    def save(path, model, meta):  # type: ignore[no-untyped-def]
        (report_dir / f"rank{rank}.saved").write_text(str(path))
        return original_save(path, model, meta)

    training._Trainer._validate = validate
    checkpoint.save_checkpoint = save
    from workbench.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
