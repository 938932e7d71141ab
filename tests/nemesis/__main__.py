"""`python -m tests.nemesis`: see run.py."""

import sys

from .run import main

sys.exit(main())
