"""`python -m device` -> device.cli."""

from device.cli import main

raise SystemExit(main())
