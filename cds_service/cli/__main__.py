"""``python -m cds_service.cli``, as it ran when the command line was one module."""

import sys

from cds_service.cli import main

sys.exit(main())
