"""Run a command as the child of this small process; write its peak RSS and CPU time.

Usage: ``python peak_rss.py REPORT COMMAND...``. REPORT receives ``{"maxrss_kb", "cpu_s"}``
of COMMAND once it has ended; this process exits with COMMAND's status. SIGTERM to this
process kills COMMAND.

Why: Linux carries a process's RSS at fork (and vfork) into its child's ``ru_maxrss``, so a
UDF spawned straight from a large process (a test run that loaded a model in-process)
reports the parent's size as its own peak. Forked from this launcher, which imports nothing
large, the child's figure is its own. Only the standard library: it runs by path.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main(report: str, command: list[str]) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    # a caller giving up on a hung COMMAND terminates this launcher: end COMMAND for good
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    _, status, usage = os.wait4(pid, 0)
    with open(report, "w", encoding="utf-8") as out:
        json.dump({"maxrss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, out)
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
