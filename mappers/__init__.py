"""SQL-aware mappers: legacy rows to canonical business events (issue #4). Imports only cdc's types."""
