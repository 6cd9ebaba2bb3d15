"""Where a SIP worker's CPU goes, by KEMI entry point: a diagnostic for ``bench/callcore_cps.py``.

cProfile (``SS_PROFILE_DIR``) measures wall time, which inside Kamailio is
mostly time spent waiting for Redis and for the scheduler. This counts each
entry's thread CPU time instead: its Python, the Kamailio functions it calls
(t_relay, loose_route...) and the kernel work of their system calls. The time
is exclusive of the entries nested in it: a branch route runs inside the
INVITE's t_relay, and a dialog event inside the BYE's loose_route.

Off unless ``SS_CPU_ACCOUNT_DIR`` is set (it costs about 2 microseconds per
entry). Each process then rewrites ``cpu-<pid>.tsv`` (label, count, ns) in
that directory at most once a second; ``read`` adds up every process's file.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path


class CpuAccount:
    def __init__(self, directory: str, dump_every_s: float = 1.0):
        self.directory = directory
        self.dump_every_s = dump_every_s
        self.totals: dict[str, list[int]] = {}  # label -> [count, exclusive ns]
        self._nested: list[int] = []  # per running entry: CPU ns of the entries nested in it so far
        self._last_dump = 0.0

    def wrap(self, method, label_of):
        """``method`` (of the KEMI class) counted under ``label_of(args)``, evaluated when it returns."""

        @functools.wraps(method)
        def counted(obj, *args):
            self._nested.append(0)
            start = time.thread_time_ns()
            try:
                return method(obj, *args)
            finally:
                spent = time.thread_time_ns() - start
                nested = self._nested.pop()
                if self._nested:
                    self._nested[-1] += spent
                entry = self.totals.setdefault(label_of(args), [0, 0])
                entry[0] += 1
                entry[1] += spent - nested
                now = time.monotonic()
                if now - self._last_dump >= self.dump_every_s:
                    self._last_dump = now
                    self.dump()

        return counted

    def dump(self):
        path = os.path.join(self.directory, f"cpu-{os.getpid()}.tsv")
        with open(path + ".tmp", "w") as out:
            for label, (count, ns) in sorted(self.totals.items()):
                out.write(f"{label}\t{count}\t{ns}\n")
        os.replace(path + ".tmp", path)


def read(directory) -> dict[str, tuple[int, int]]:
    """Every process's totals added up: label -> (count, ns)."""
    totals: dict[str, list[int]] = {}
    for path in Path(directory).glob("cpu-*.tsv"):
        for line in path.read_text().splitlines():
            label, count, ns = line.split("\t")
            entry = totals.setdefault(label, [0, 0])
            entry[0] += int(count)
            entry[1] += int(ns)
    return {label: (count, ns) for label, (count, ns) in totals.items()}
