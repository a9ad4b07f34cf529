"""Peak resident memory of this process.

``getrusage(RUSAGE_SELF).ru_maxrss`` is no good in a benchmark's child process: Linux carries
the parent's peak across fork and exec, so a child started by a parent that built a large input
reports the parent's peak. ``VmHWM`` in /proc belongs to this process image alone.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
