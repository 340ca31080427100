class GencrsError(Exception):
    """An error a user can act on; recipes and the CLI print it as one line and exit non-zero."""


class DataError(GencrsError):
    """Bad or missing input data. The message names the file and line (or field) at fault."""
