"""``python -m escn_ase.data``: the same as ``escn-ase generate-data``."""

import sys

from .cli import main

sys.exit(main())
