"""`python bench/launch.py RESULT TIMEOUT -- ARGV...`: run ARGV and report how it went.

Writes `{"wall": seconds, "max_rss": bytes, "status": exit status, "cpu": seconds}` as JSON to
RESULT (`cpu`: the user and system time of that process and of the children it waited for). Why a
process of its own: Linux keeps a process's peak RSS across `exec`, so a command spawned by the
benchmark itself (which holds datasets of 50,000 tasks) would report the benchmark's memory as
its own. This launcher is small, and the command it forks starts from its few megabytes.
Standard library only: it runs as a script, with no package on its path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time


def main() -> int:
    result, timeout, separator, *argv = sys.argv[1:]
    if separator != "--" or not argv:
        print("usage: launch.py RESULT TIMEOUT -- ARGV...", file=sys.stderr)
        return 2
    start = time.perf_counter()
    process = subprocess.Popen(argv)
    timer = threading.Timer(float(timeout), os.kill, (process.pid, signal.SIGKILL))
    timer.start()
    try:
        _, wait_status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    process.returncode = status = os.waitstatus_to_exitcode(wait_status)
    with open(result, "w", encoding="utf-8") as out:
        cpu = usage.ru_utime + usage.ru_stime
        json.dump(
            {"wall": wall, "max_rss": usage.ru_maxrss * 1024, "status": status, "cpu": cpu}, out
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
