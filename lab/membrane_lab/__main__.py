"""`python3 -m membrane_lab` (with lab/ on the path) runs membrane-lab."""

import sys

from .cli import main

sys.exit(main())
