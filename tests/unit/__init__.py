"""Pure cores tested with byte and row fixtures: no servers, no I/O beyond temp files."""
