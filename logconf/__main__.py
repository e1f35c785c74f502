import sys

from logconf.cli import main

sys.exit(main())
