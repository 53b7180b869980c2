"""Who and where this machine is: the values a shareable report must not contain.

Not a registered probe on purpose: the identity is never saved in facts. `report` and
`check --baseline` read it here and hand it to the pure `redact.redact`.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Dict, List, Optional

from merlin_doctor.redact import Identity


def local_identity(env: Optional[Dict[str, str]] = None) -> Identity:
    """The user, host names and home directory of this process, each spelling once."""
    env = dict(os.environ if env is None else env)
    users: List[str] = [env.get(v, "") for v in ("USER", "LOGNAME")]
    try:
        users.insert(0, getpass.getuser())
    except (KeyError, OSError):  # no passwd entry (some containers)
        pass
    home = os.path.expanduser("~")
    homes = [home, os.path.realpath(home), env.get("HOME", "")]
    hosts = [socket.gethostname(), env.get("HOSTNAME", "")]
    keep = lambda values: tuple(dict.fromkeys(v for v in values if v and v not in ("/", "")))  # noqa: E731
    return Identity(keep(users), keep(hosts), keep(homes))
