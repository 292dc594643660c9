"""`python -m ghframes` is the `ghframes` command."""

import sys

from ghframes.cli import main

sys.exit(main())
