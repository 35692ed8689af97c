"""Loading and checking the config file."""
