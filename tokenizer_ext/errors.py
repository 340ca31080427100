class SemanticIdError(ValueError):
    """A catalog or code table that cannot become semantic IDs; the message says what to change."""
