"""``python -m darkflow.master FILE... -o master.fits``: same as ``darkflow combine``."""

import sys

from darkflow.master._cli import main_combine

if __name__ == "__main__":
    sys.exit(main_combine())
