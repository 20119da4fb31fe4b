"""python -m src.datamodules.catalog: the `corrlab-data` command."""

import sys

from src.datamodules.catalog.cli import main

sys.exit(main())
