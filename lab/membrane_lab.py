#!/usr/bin/env python3
"""membrane-lab: a whole Membrane cluster on one machine (the package membrane_lab/ next to this file).

This file only runs the package's command line: from a checkout as
`python3 lab/membrane_lab.py ...`, and installed as `membrane-lab`, a zipapp of
the package with this file as its __main__ (lab/CMakeLists.txt).
"""

import sys

from membrane_lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
