"""What a run's numbers depend on beyond its data and settings, and fixing the CPU thread count.

On the CPU, torch splits reductions (convolution gradients, matrix products) between its threads
and picks vectorised kernels (ATen, oneDNN, MKL) for the CPU's instruction set; each choice sums
in another order, so the float32 results, and after many training steps the model, differ. Runs on
one machine with the same thread count agree bit for bit; ``torch.use_deterministic_algorithms``
does not change any of this on the CPU (measured: docs/pipeline.md).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

#: Environment variables that change which CPU kernels or how many threads torch uses.
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def numeric_environment() -> dict[str, Any]:
    """The settings of this process that a run's numbers depend on (for ``run.json``)."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "machine": platform.machine(),
        "kernel_variables": {name: os.environ[name] for name in KERNEL_VARIABLES
                             if name in os.environ},
    }


@contextmanager
def cpu_threads(threads: int) -> Iterator[None]:
    """Use ``threads`` CPU threads inside the block (0: leave torch's choice), then restore."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
