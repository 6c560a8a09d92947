"""`python -m webhook` is `netguard`."""

from webhook.cli.main import main

raise SystemExit(main())
