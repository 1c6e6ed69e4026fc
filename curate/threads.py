"""Compute threads for torch in the `synth` and `train` commands: no more than the CPUs that are free.

torch starts one OpenMP thread per core it counts, and every operation waits for all of them. Where
the process may use fewer CPUs than the machine has (an affinity mask, a container's CPU quota), or where
other work keeps some of them busy, one of those threads is often waiting for a time slice, and a small
model's many short operations wait with it: on the 2-core development machine under a load average of
14-20, the hf backend made 518 tokens/s with one thread against 264 with torch's default of two
(`benchmarks/bench_generate.py --backends hf`; a passive OpenMP wait policy did not help: 241).

`configure_threads()` runs once at the start of a command, before torch is imported, and sets
`OMP_NUM_THREADS` to `free_cpus()` unless the user set it: their setting always wins.

>>> import os
>>> from curate.threads import free_cpus, usable_cpus
>>> 1 <= free_cpus() <= usable_cpus() <= (os.cpu_count() or 1)
True
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def free_cpus() -> int:
    """Usable CPUs less those other work keeps busy (the 1-minute load average, rounded down); at least 1."""
    cpus = usable_cpus()
    try:
        busy = int(os.getloadavg()[0])
    except OSError:
        busy = 0
    return max(1, cpus - busy)


def configure_threads() -> str:
    """Set `OMP_NUM_THREADS` to `free_cpus()` unless the user did; return the value that holds.

    The variable only takes effect when the OpenMP runtime loads (with torch), so call this before
    importing torch; if torch is already loaded, its intra-op thread count is set directly.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return os.environ["OMP_NUM_THREADS"]
    threads = free_cpus()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return str(threads)
