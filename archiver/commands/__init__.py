"""What each command does beyond parsing its arguments: run, verify, status, demo."""
