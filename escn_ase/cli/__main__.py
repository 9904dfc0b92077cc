"""``python -m escn_ase.cli``: the same as ``escn-ase``."""

import sys

from . import main

sys.exit(main())
