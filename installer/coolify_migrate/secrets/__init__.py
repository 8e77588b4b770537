"""Keys and encrypted values: which key each value is under, the audit, rolls in one verified
transaction, the repair of values an app's own roll garbled, and the key kept on the host."""
