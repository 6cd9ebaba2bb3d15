"""The per-entry CPU accounting behind bench/callcore_cps.py --cpu-breakdown."""

import time

from callcore.cpuacct import CpuAccount, read


def _burn(ns):
    end = time.thread_time_ns() + ns
    while time.thread_time_ns() < end:
        pass


def test_a_nested_entry_is_not_counted_twice(tmp_path):
    class Entries:  # a KEMI class of its own: wrapping rebinds its methods
        def outer(self, inner_ns):
            _burn(2_000_000)
            self.inner(inner_ns)
            return "relayed"

        def inner(self, ns):
            _burn(ns)

    account = CpuAccount(str(tmp_path))
    Entries.outer = account.wrap(Entries.outer, lambda args: "request INVITE")
    Entries.inner = account.wrap(Entries.inner, lambda args: "branch route")
    start = time.thread_time_ns()
    assert Entries().outer(6_000_000) == "relayed"
    total = time.thread_time_ns() - start

    (outer_count, outer_ns), (inner_count, inner_ns) = account.totals["request INVITE"], account.totals["branch route"]
    assert (outer_count, inner_count) == (1, 1)
    assert inner_ns >= 6_000_000
    # Exclusive: the branch route's time is not also the INVITE's; together they are the whole call.
    assert outer_ns < total - inner_ns + 1_000_000
    assert outer_ns + inner_ns <= total


def test_every_process_file_is_added_up(tmp_path):
    (tmp_path / "cpu-11.tsv").write_text("request ACK\t3\t300\nrequest BYE\t1\t50\n")
    (tmp_path / "cpu-12.tsv").write_text("request ACK\t2\t200\n")
    account = CpuAccount(str(tmp_path))
    account.totals["dialog dialog:end"] = [4, 1000]
    account.dump()
    assert read(tmp_path) == {"request ACK": (5, 500), "request BYE": (1, 50), "dialog dialog:end": (4, 1000)}
