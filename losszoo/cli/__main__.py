"""``python -m losszoo.cli`` is ``losszoo``."""

from losszoo.cli.main import main

main()
