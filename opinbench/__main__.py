"""``python -m opinbench``: the ``opinbench`` command, for launchers that start modules
(``accelerate launch -m opinbench train sft ...``, ``torchrun -m opinbench ...``)."""

import sys

from opinbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
