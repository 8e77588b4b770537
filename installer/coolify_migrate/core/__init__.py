"""The foundation every other part stands on, and which names no app: errors and exit codes,
secrets that cannot leak, durable writes, the context, and the interfaces an app, a store and a
runtime fill in (``app``)."""
