"""Run the command line as ``python -m imtegrity_proxy``."""

from imtegrity_proxy.cli import main

raise SystemExit(main())
