"""python peak_rss.py OUT ARGV...: run ARGV, write its peak resident memory (KiB) to OUT, exit as it did.

Why a wrapper: the kernel's peak RSS of a child includes what it had when it was forked, before it
executed its program. Forked from the test process (pandas, scikit-learn: hundreds of MiB), every
child would seem that big. Forked from this small process, the figure is the program's own.
Imports only os and sys, for that reason.
"""

import os
import sys

out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execvp(argv[0], argv)  # noqa: S606 - the test gives the exact program
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as handle:
    handle.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
