"""Real servers for tests, benchmarks and the demo: started privately on free loopback ports."""
