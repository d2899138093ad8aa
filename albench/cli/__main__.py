"""``python -m albench.cli``: the same command line as the ``albench`` script."""

from albench.cli.main import main

main()
