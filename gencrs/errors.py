from tokenizer_ext.errors import SemanticIdError


class GencrsError(Exception):
    """An error a user can act on; recipes and the CLI print it as one line and exit non-zero."""


class DataError(GencrsError):
    """Bad or missing input data. The message names the file and line (or field) at fault."""


# What an entry point reports as one line instead of a traceback: the library's own errors, tokenizer_ext's, and bad
# values and unreadable files (ValueError, OSError: a config or a file the user gave).
USER_ERRORS = (GencrsError, SemanticIdError, ValueError, OSError)
