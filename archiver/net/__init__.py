"""The network: the one HTTP layer, its retries and limits, and media downloads."""
