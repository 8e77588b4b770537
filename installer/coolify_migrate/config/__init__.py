"""The files an operator edits or a maintainer publishes: the app's ``.env`` and ``versions.json``
(with its signature)."""
