"""Store: the table schemas, the frame codec, and shard and manifest I/O (one reader per format)."""
