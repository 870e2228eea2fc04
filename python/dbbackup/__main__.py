"""``python -m dbbackup ARGS``: the bundled binary, for when its directory is not on
PATH (a ``pip install --user`` whose ``~/.local/bin`` is not in PATH, say)."""

import os
import sys

from dbbackup import binary


def main() -> None:
    # A command-line entry point: one line, not a traceback, when there is no
    # binary to run (127, as a shell says for a command it cannot find).
    try:
        path = binary()
        # exec, not a child process: signals, exit code and terminal go straight to dbbackup.
        os.execv(path, [path, *sys.argv[1:]])
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main()
