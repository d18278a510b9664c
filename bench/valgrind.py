"""Instructions a process executes, counted by valgrind: the figure of ``bench/instructions.py``
and ``bench/then_and_now.py``, which does not drift with the machine's hour.

Only the standard library: ``then_and_now.py``'s measured processes import the tree they measure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys


def instructions(argv: list[str]) -> int:
    """The instructions of ``python argv``, run under cachegrind without cache simulation, with one
    hash seed (set and dict layouts, and so the count, the same from run to run) and none of this
    shell's ``CDS_*`` settings (a database URL there would be measured too)."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")} | {"PYTHONHASHSEED": "0"}
    done = subprocess.run([*command, sys.executable, *argv], capture_output=True, text=True, env=env)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode or found is None:
        raise SystemExit(f"{' '.join(argv)} could not be counted:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))
