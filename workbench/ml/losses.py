"""Segmentation losses that ignore unlabelled pixels (target value 255).

Cross-entropy with ``ignore_index`` is the base (optionally class-weighted); a soft
Dice term can be added for thin or rare classes, and the Lovasz-softmax (Berman et al.
2018, a convex surrogate of the per-class Jaccard loss) to optimise mIoU itself. Ignored pixels contribute neither to
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


LOVASZ_MAX_PIXELS = 131_072
"""The Lovasz term sorts the errors of every class: on a CPU that is the costly part, so a
batch with more labelled pixels uses an evenly spaced subset of this many (an unbiased
enough estimate for a loss that is already a per-batch surrogate)."""


def _lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Jaccard extension with respect to the sorted errors (Berman et al., alg. 1)."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def lovasz_softmax_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE,
                        max_pixels: int = LOVASZ_MAX_PIXELS) -> torch.Tensor:
    """Mean Lovasz-softmax loss over the classes present in the labelled pixels of the batch."""
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, num_classes)
    labels = target.reshape(-1)
    valid = labels != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    probs, labels = probs[valid], labels[valid].long()
    if labels.numel() > max_pixels:
        keep = torch.linspace(0, labels.numel() - 1, max_pixels, device=labels.device).long()
        probs, labels = probs[keep], labels[keep]
    losses = []
    for c in torch.unique(labels).tolist():
        fg = (labels == c).float()
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
    return torch.stack(losses).mean()


class SegmentationLoss(nn.Module):
    """Cross-entropy (ignore 255, optional class weights) plus optional Dice and Lovasz terms."""

    def __init__(self, class_weights: torch.Tensor | None = None, dice: bool = False,
                 dice_weight: float = 1.0, ignore_index: int = IGNORE, lovasz: bool = False,
                 lovasz_weight: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights if class_weights is not None else None)
        self.dice = dice
        self.dice_weight = dice_weight
        self.lovasz = lovasz
        self.lovasz_weight = lovasz_weight
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
        if self.lovasz:
            loss = loss + self.lovasz_weight * lovasz_softmax_loss(logits, target, self.ignore_index)
        return loss
