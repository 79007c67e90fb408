"""``python -m artstyle``: the same as the ``artstyle`` command."""

import sys

from artstyle.cli import main

sys.exit(main())
