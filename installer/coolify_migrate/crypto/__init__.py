"""Ciphers of the apps' encrypted columns, and the legacy date-seeded key scheme."""
