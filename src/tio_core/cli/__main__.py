"""python -m tio_core.cli: the tio command."""

import sys

from tio_core.cli import main

sys.exit(main())
