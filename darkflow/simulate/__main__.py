"""``python -m darkflow.simulate OUT --preset demo --seed 0``."""

from darkflow.simulate.cli import main

raise SystemExit(main())
