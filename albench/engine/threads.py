"""CPU threads per run: fixed, so a run's numbers never depend on how many runs share the machine.

Parallel reductions (matrix products, sums in torch and in BLAS) add in an order that depends on
the number of threads, so the same run gave different accuracies with ``--workers 1`` (all cores)
and ``--workers 2`` (one thread each). Every process that executes runs therefore uses the same
count: ``$ALBENCH_THREADS`` (``albench run --threads N``), default 1, applied to torch's
intra-op pool and to the BLAS/OpenMP pools (threadpoolctl). A count other than 1 enters the run's
configuration, so records made with different counts never share an identity.
"""

from __future__ import annotations

import os

from albench.api.errors import AlbenchError

ENV_THREADS = "ALBENCH_THREADS"
DEFAULT_THREADS = 1
MAX_THREADS = 1024


def run_threads() -> int:
    """The CPU thread count every run uses (``$ALBENCH_THREADS``, default 1)."""
    raw = os.environ.get(ENV_THREADS, "").strip()
    if not raw:
        return DEFAULT_THREADS
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        raise AlbenchError(
            f"{ENV_THREADS}={raw!r} (--threads) must be an integer in 1..{MAX_THREADS}: the CPU threads each run uses."
        )
    return n


def apply_threads() -> int:
    """Set torch's and the BLAS/OpenMP libraries' thread pools of this process to :func:`run_threads`."""
    import torch

    n = run_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)
    except ImportError:  # scikit-learn brings threadpoolctl; without it BLAS keeps its own count
        pass
    return n
