"""The one error type the command turns into a clear message and a non-zero exit."""


class LocalTopologyError(Exception):
    """Something the user can fix (bad input, missing program, busy port, nothing running).

    The message is shown as is, so it says what is wrong and what to do about it.
    """
