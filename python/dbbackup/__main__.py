"""``python -m dbbackup ARGS``: the bundled binary, for when its directory is not on
PATH (a ``pip install --user`` whose ``~/.local/bin`` is not in PATH, say)."""

import os
import sys

from dbbackup import binary


def main() -> None:
    path = binary()
    # exec, not a child process: signals, exit code and terminal go straight to dbbackup.
    os.execv(path, [path, *sys.argv[1:]])


if __name__ == "__main__":
    main()
