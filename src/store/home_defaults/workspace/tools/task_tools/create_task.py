#!/usr/bin/env python3
"""Create a background task: a separate CLI run that reports back into this chat.

Usage: create_task.py [--name N] [--provider P] [--model M] [--thinking T]
       [--priority interactive|background|batch] "prompt"

This script is a thin front for `ductor task create`: it runs the ductor binary with the
same arguments, so its output (one JSON object), its messages and its exit status are the
command's own. See `ductor task --help`.

The agent is taken from this script's location (.../agents/<name>/workspace/tools/...),
else DUCTOR_AGENT_NAME, else `main`. The binary is $DUCTOR_BIN when set (ductor sets it for
the CLIs it runs), else `ductor` on the PATH. Needs nothing but Python 3's standard library.
"""

import json
import os
import shutil
import sys

COMMAND = ["task", "create"]
SENDS_AGENT = True


def find_ductor():
    """The ductor binary to run, or None."""
    configured = os.environ.get("DUCTOR_BIN", "").strip()
    if configured:
        return configured
    return shutil.which("ductor")


def agent_name():
    """The agent whose workspace holds this script, else DUCTOR_AGENT_NAME, else main."""
    parts = os.path.realpath(os.path.abspath(__file__)).split(os.sep)
    for i in range(len(parts) - 3):
        if parts[i] == "agents" and parts[i + 2] == "workspace" and parts[i + 3] == "tools":
            return parts[i + 1]
    return os.environ.get("DUCTOR_AGENT_NAME", "").strip() or "main"


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(1)


def main():
    binary = find_ductor()
    if binary is None:
        fail("ductor was not found: set DUCTOR_BIN to the ductor binary or put ductor on the PATH")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        fail("DUCTOR_BIN does not name an executable file: " + binary)
    args = list(sys.argv[1:])
    if SENDS_AGENT and "--from" not in args:
        args = ["--from", agent_name(), *args]
    sys.stdout.flush()
    try:
        os.execv(binary, [binary, *COMMAND, *args])
    except OSError as exc:
        fail("could not run " + binary + ": " + str(exc))


if __name__ == "__main__":
    main()
