"""`python -m webhook` is the `snapshot-webhook` command."""

import sys

from webhook.cli.main import main

sys.exit(main())
