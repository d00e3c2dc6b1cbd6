"""Segmentation losses that ignore unlabelled pixels (target value 255).

Cross-entropy with ``ignore_index`` is the base (optionally class-weighted); a soft
Dice term can be added for thin or rare classes. Ignored pixels contribute neither to
the value nor to the gradient of either term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workbench.ml.data import IGNORE


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE,
                   eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over the classes present in the labelled pixels of the batch."""
    num_classes = logits.shape[1]
    valid = target != ignore_index
    probs = logits.float().softmax(dim=1) * valid.unsqueeze(1)
    onehot = F.one_hot(torch.where(valid, target, 0).long(), num_classes).permute(0, 3, 1, 2)
    onehot = onehot.to(probs.dtype) * valid.unsqueeze(1)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    card = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (card + eps)
    present = onehot.sum(dims) > 0
    if not bool(present.any()):
        return logits.sum() * 0.0  # keeps the graph; nothing labelled in this batch
    return 1.0 - dice[present].mean()


class SegmentationLoss(nn.Module):
    """Cross-entropy (ignore 255, optional class weights) plus an optional Dice term."""

    def __init__(self, class_weights: torch.Tensor | None = None, dice: bool = False,
                 dice_weight: float = 1.0, ignore_index: int = IGNORE) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights if class_weights is not None else None)
        self.dice = dice
        self.dice_weight = dice_weight
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of (N, K, H, W) logits against (N, H, W) integer targets."""
        target = target.long()
        if not bool((target != self.ignore_index).any()):
            return logits.sum() * 0.0  # an all-unlabelled batch: no signal, no NaN
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        loss = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=self.ignore_index)
        if self.dice:
            loss = loss + self.dice_weight * soft_dice_loss(logits, target, self.ignore_index)
        return loss
