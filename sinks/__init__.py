"""Sink adapters: deliver journal records (or mapped envelopes) to a target -- files, HTTP APIs, Kafka.

Dependency rule (design §8): modules here import only `cdc`'s types, protocols and errors
(`cdc.types`, `cdc.errors`, ...), never the engine's concrete parts (readers, journal backends,
pipeline); only the CLI and the connector registry name concrete sink classes.
"""
