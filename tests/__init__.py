"""The test suite: unit/ (pure), integration/ and e2e/ (real PostgreSQL), servers/ (how they start)."""
