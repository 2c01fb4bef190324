"""`python -m webhook` is the `snapshot-webhook` command."""

import sys

from webhook.cli import main

sys.exit(main())
