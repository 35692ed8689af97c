"""The browsable offline catalog (index.html) of an archive."""
