"""``python -m darkflow``: the ``darkflow`` command."""

import sys

from darkflow.cli import main

sys.exit(main())
