#!/usr/bin/env python3
"""List the agents and which of them are running.

This script is a thin front for `ductor agent list`: it runs the ductor binary with the
same arguments, so its output (one JSON object), its messages and its exit status are the
command's own. See `ductor agent list --help`.

The agent is the one whose workspace holds this script (its home is set as DUCTOR_HOME),
else DUCTOR_AGENT_NAME, else main.

The binary is $DUCTOR_BIN when set (ductor sets it for the CLIs it runs), else `ductor` on
the PATH. Needs nothing but Python 3's standard library.
"""

import json
import os
import shutil
import sys

COMMAND = ["agent", "list"]


def find_ductor():
    """The ductor binary to run, or None."""
    configured = os.environ.get("DUCTOR_BIN", "").strip()
    if configured:
        return configured
    return shutil.which("ductor")


def agent_home():
    """The home of the agent whose workspace holds this script (<home>/workspace/tools/<group>/)."""
    here = os.path.dirname(os.path.abspath(__file__))
    workspace = os.path.dirname(os.path.dirname(here))
    if os.path.basename(workspace) != "workspace":
        return None
    return os.path.dirname(workspace)


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(1)


def main():
    binary = find_ductor()
    if binary is None:
        fail("ductor was not found: set DUCTOR_BIN to the ductor binary or put ductor on the PATH")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        fail("DUCTOR_BIN does not name an executable file: " + binary)
    home = agent_home()
    if home is not None:
        os.environ["DUCTOR_HOME"] = home
    sys.stdout.flush()
    try:
        os.execv(binary, [binary, *COMMAND, *sys.argv[1:]])
    except OSError as exc:
        fail("could not run " + binary + ": " + str(exc))


if __name__ == "__main__":
    main()
