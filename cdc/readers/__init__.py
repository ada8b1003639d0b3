"""Change readers: the pgoutput decoder and PostgreSQL type conversions, the PostgreSQL and binlog sources."""
