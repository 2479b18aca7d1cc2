"""The `fleetmon` command line: one module per command group, each with a `register(subparsers)`;
main.py imports only the group of the command being run (its COMMANDS table lists the rest)."""
