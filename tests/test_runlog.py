"""The run log: each phase's closing line is written once."""

from __future__ import annotations

from coolify_migrate.core.context import Context
from coolify_migrate.state.runlog import RunLog


def test_a_phase_closed_twice_logs_one_closing_line(ctx: Context) -> None:
    """A phase is closed where it ends and again by a ``finally`` (the roll's bar, closed before
    COMMIT and once more after it): the log keeps the first time, not a second, later one."""
    log = RunLog(ctx, "upgrade")
    bar = log.progress("re-encrypting", 3, "rows")
    bar.advance(3)
    bar.close()
    bar.close()
    lines = log.path.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines if "done in" in line] == [
        "re-encrypting: 3 rows done in 0.0 s"
    ]
