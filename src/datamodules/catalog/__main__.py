"""python -m corrlab.datamodules.catalog: the `corrlab-data` command."""

import sys

from corrlab.datamodules.catalog.cli import main

sys.exit(main())
