"""When this process started, for the contender scripts' wall times (interpreter start-up
included). Imported first, before anything slow, by pool_score.py, ray_score.py and
daft_score.py."""

import os
import time


def process_start():
    """When this process started, as a time.time() value: now minus the process's age from
    /proc (clock ticks since boot vs /proc/uptime)."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()
