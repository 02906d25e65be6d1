"""`python -m gandyn ...` (and `torchrun ... -m gandyn run CONFIG.toml`): the gandyn command."""
import sys

from gandyn.cli import main

sys.exit(main())
