"""The tests: real HTTP servers on loopback, the CLI run in process."""
