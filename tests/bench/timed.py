#!/usr/bin/env python3
# timed.py LOG OUT CMD...: runs CMD with stdout to OUT (stderr to /dev/null) and appends
# "wall user sys maxrss_kb" to LOG (seconds, 4 decimals: the child's own rusage from wait4,
# not time(1)'s 10 ms ticks); exits with CMD's status. Shared by the decode benchmarks.
import os, sys, time

log, out, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
null = os.open(os.devnull, os.O_WRONLY)
# posix_spawn (vfork underneath), not fork: a forked Python copies its page tables and
# takes copy-on-write faults before exec, ~1.3 ms of wall and CPU charged to the child.
t0 = time.perf_counter()
pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
_, st, ru = os.wait4(pid, 0)
t1 = time.perf_counter()
with open(log, "a") as f:
    f.write("%.4f %.4f %.4f %d\n" % (t1 - t0, ru.ru_utime, ru.ru_stime, ru.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(st))
