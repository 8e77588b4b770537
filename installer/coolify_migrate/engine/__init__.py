"""The upgrade engine: steps and their registry, the pure planner, and the driver that runs a
plan through its journal (upgrade, resume, automatic rollback)."""
