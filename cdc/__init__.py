"""Change-data-capture bridge for legacy ERP databases.

Packages: `cdc.config` (connector files), `cdc.readers` (change-log readers and their pure decoders),
`cdc.journal` (the durable journal between capture and delivery), `cdc.pipeline` (capture and delivery
loops), `cdc.cli` (the `cdc` command). Sinks live in the top-level `sinks` package, mappings in `mappers`.
"""

__version__ = "0.1.0"
