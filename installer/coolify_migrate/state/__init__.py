"""The tool's own durable state beside the instance: the run journal, the lock, run logs and the
keyring of every key the instance used."""
