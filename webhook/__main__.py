"""`python -m webhook` is `netguard`."""

from webhook.cli import main

raise SystemExit(main())
