"""What the benches read of a running process from /proc: CPU time and peak memory.

Bench scripts run as `python bench/<name>.py`, so this folder is on the path:
`from procstat import cpu_seconds`.
"""

from __future__ import annotations

import os
from pathlib import Path

UTIME, STIME = 11, 12  # fields of /proc/<pid>/stat after the command name


def cpu_seconds(pid: int, fields: tuple[int, ...] = (UTIME, STIME)) -> float:
    """CPU seconds the process (all its threads) used so far: user + system by default."""
    values = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(values[i]) for i in fields) / os.sysconf("SC_CLK_TCK")


def peak_rss_kb(pid: int) -> int | None:
    """VmHWM of the process in KiB, None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
