"""The one user-facing error type, shared by the runtime and the ``dbt_rfm`` package."""


class RfmError(Exception):
    """A user-facing error: says what was expected, what was found, and where (dbt node, column)."""
