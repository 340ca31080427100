"""Training: supervised records in the output format, model loading/extension, the ConKD loss."""
