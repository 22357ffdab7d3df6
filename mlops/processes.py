"""This machine's name and whether a process on it still runs: what the retrain locks, the jobs
and the sweeps' trial claims use to tell a holder that died from one that is busy."""

from __future__ import annotations

import os
import socket

HOSTNAME = socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether `pid` runs. A zombie — killed, but not yet reaped because its parent died too and the
    container's PID 1 may never reap it — counts as dead: signal 0 still reaches it, /proc says 'Z'."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): signal 0 is all there is
    return state not in (b"Z", b"X")
