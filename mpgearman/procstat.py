"""CPU time and resident memory of the server's processes, read with psutil.

Owns: turning (role, index, pid) triples from the counters mapping into
figures. Used when someone asks (a scrape, the `stats` admin command),
never on a job path. Must not: keep state or signal anything.
"""
import psutil


def sample(processes) -> list:
    """(role, index, pid, cpu seconds (user + system), rss bytes) for each
    (role, index, pid) that still runs; vanished processes are left out."""
    out = []
    for role, index, pid in processes:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                cpu = proc.cpu_times()
                rss = proc.memory_info().rss
        except psutil.Error:
            continue
        out.append((role, index, pid, cpu.user + cpu.system, rss))
    return out


def start_times(processes) -> list:
    """(role, index, start time since the epoch) for each (role, index, pid)
    that still runs."""
    out = []
    for role, index, pid in processes:
        try:
            out.append((role, index, psutil.Process(pid).create_time()))
        except psutil.Error:
            continue
    return out
