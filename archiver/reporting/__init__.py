"""What a run tells: the console and log, the run report, notifications, metrics."""
