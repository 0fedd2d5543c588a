"""CPU time of the benchmark's processes and of everything else on the machine, from /proc."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time a process has used so far, all threads, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / CLOCK_TICKS_PER_SECOND


def machine_busy_seconds() -> float:
    """Return the CPU time all cores spent outside idle and I/O wait since boot, in seconds."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    # cpu user nice system idle iowait irq softirq steal (guest time is already in user).
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_SECOND


@dataclass(frozen=True)
class CpuUsage:
    """CPU seconds used during one interval, per named process and by all other processes."""

    by_process: dict[str, float]
    others: float
    wall: float

    @property
    def others_load(self) -> float:
        """Return the mean number of cores that other processes kept busy."""
        return self.others / self.wall if self.wall > 0 else 0.0


class CpuMeter:
    """Measures CPU time of named processes, and of the rest of the machine, over an interval."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._process_start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine_start = machine_busy_seconds()
        self._wall_start = time.perf_counter()

    def stop(self) -> CpuUsage:
        wall = time.perf_counter() - self._wall_start
        machine = machine_busy_seconds() - self._machine_start
        by_process = {
            name: cpu_seconds(pid) - self._process_start[name] for name, pid in self.pids.items()
        }
        # Tick rounding can make the difference slightly negative on an idle machine.
        others = max(0.0, machine - sum(by_process.values()))
        return CpuUsage(by_process, others, wall)
