"""Resident memory of a process, as `stream.py` and the benchmark report it.

`resident_gib` reads a process's resident set size (VmRSS) from Linux's
`/proc/<pid>/status`, now; `peak_resident_gib` is this process's peak so
far, from `getrusage`.
"""

import resource


def resident_gib(pid: int | str = "self") -> float | None:
    """The resident memory of process `pid` (default: this one) in GiB, or
    None when another process has none to read: it has exited, or is a
    zombie (whose status has no VmRSS line). Linux only: without `/proc`,
    reading this process's raises `FileNotFoundError`."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 2**20  # The line is in KiB.
    except FileNotFoundError:
        if pid == "self":
            raise
    return None


def peak_resident_gib() -> float:
    """This process's peak resident memory so far, in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux.
