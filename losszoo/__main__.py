"""``python -m losszoo`` is ``losszoo``."""

from losszoo.cli.main import main

main()
