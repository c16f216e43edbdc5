"""Errors that the CLI turns into one line and an exit code (never a traceback)."""


class ClbenchError(Exception):
    """Base class: a problem the user can fix; the message says how."""

    exit_code = 1


class UsageError(ClbenchError):
    """Bad command-line input: unknown name, key or value (exit code 2)."""

    exit_code = 2


class DataError(ClbenchError):
    """A data set is missing, incomplete or corrupt (exit code 1)."""

    exit_code = 1


class ClbenchWarning(UserWarning):
    """A run that works but not as its settings may suggest; the CLI prints it as one line."""
