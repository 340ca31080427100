import sys

from gencrs.cli import main

sys.exit(main())
