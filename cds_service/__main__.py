import sys

from cds_service.cli import main

sys.exit(main())
