"""``python -m breachbench`` runs the CLI."""

from breachbench.cli import main

main()
