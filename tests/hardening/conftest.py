"""Hardening tests run tiny models: one torch thread is faster for them and immune to
oversubscription (two OpenMP threads on a busy 2-core machine spin-wait: a 32 x 32
U-Net forward took 1.9 s with 2 threads and 15 ms with 1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch  # the fuzz, untrusted, CLI and fault tests import it anyway


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
