"""What memory this process may still allocate: the smallest of MemAvailable (or the commit limit
under strict overcommit), the cgroup's memory limit less its usage (v2 or v1, the cgroup and its
ancestors), and RLIMIT_AS / RLIMIT_DATA less what the process already maps; the physical memory,
then an assumption, where none can be read. core.budget compares its estimates with it. Free of torch."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

MiB, GiB = 1 << 20, 1 << 30
RESERVE = 256 * MiB  # kept back for what the estimates do not count: threads, allocator arenas, the UI
MARGIN = 0.2  # and this share of what is left: the estimates count buffers, not the allocator's slack
FALLBACK = 8 * GiB  # assumed where nothing about the machine's memory can be read
UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as 2**63 rounded down to a page


@dataclass(frozen=True)
class Available:
    bytes: int  # what may still be allocated, RESERVE already kept back
    source: str  # which limit it is, in words


def _read(path: Path | str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None


def _fields(text: str | None) -> dict[str, int]:
    """'Key:   123 kB' lines (/proc/meminfo, /proc/self/status) -> {Key: bytes}."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def _cgroup_room() -> int | None:
    """The tightest cgroup memory limit on this process, less the cgroup's usage (v2, else v1)."""
    rooms: list[int] = []
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        v2 = parts[0] == "0" and parts[1] == ""
        if not v2 and "memory" not in parts[1].split(","):
            continue
        root = Path("/sys/fs/cgroup") if v2 else Path("/sys/fs/cgroup/memory")
        limit_file, usage_file = ("memory.max", "memory.current") if v2 else ("memory.limit_in_bytes", "memory.usage_in_bytes")
        # the cgroup's own folder and its ancestors (a limit anywhere above applies); in a container
        # with its own cgroup namespace the path may not resolve, and the mount's root is the cgroup
        rel = Path(parts[2].lstrip("/"))
        folders = [root / rel, *(root / p for p in rel.parents)]
        for folder in dict.fromkeys(folders):
            limit = _number(_read(folder / limit_file))
            if limit is None or limit >= UNLIMITED:
                continue
            usage = _number(_read(folder / usage_file)) or 0
            rooms.append(max(0, limit - usage))
    return min(rooms) if rooms else None


def available() -> Available:
    """What may still be allocated: the smallest of the limits that can be read, MARGIN and RESERVE kept back."""
    found: list[tuple[int, str]] = []
    meminfo = _fields(_read("/proc/meminfo"))
    if "MemAvailable" in meminfo:
        found.append((meminfo["MemAvailable"], "MemAvailable in /proc/meminfo"))
    if _number(_read("/proc/sys/vm/overcommit_memory")) == 2 and "CommitLimit" in meminfo:
        found.append((meminfo["CommitLimit"] - meminfo.get("Committed_AS", 0), "the commit limit of strict overcommit"))
    room = _cgroup_room()
    if room is not None:
        found.append((room, "the cgroup memory limit"))
    status = _fields(_read("/proc/self/status"))
    for limit, used, name in ((resource.RLIMIT_AS, "VmSize", "the address-space limit, ulimit -v"),
                              (resource.RLIMIT_DATA, "VmData", "the data-segment limit, ulimit -d")):
        soft, _ = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY:
            mapped = status[used] if used in status else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            found.append((soft - mapped, name))
    if not found:
        try:
            found.append((os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "the physical memory"))
        except (ValueError, OSError, AttributeError):
            found.append((FALLBACK, "assumed: the machine's memory could not be read"))
    room, source = min(found)
    return Available(max(0, int(room * (1 - MARGIN)) - RESERVE), f"{source}, less {MARGIN:.0%} and {RESERVE // MiB} MiB kept back")
