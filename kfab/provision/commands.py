"""Sub-commands of this component (filled in by the component's work)."""


def add_commands(subparsers) -> None:
    pass
