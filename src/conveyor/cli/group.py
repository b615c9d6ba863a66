"""The top-level group: every failure ends as one `error: ...` line on stderr, never a traceback.

Operators script this tool; a one-line reason and an exit status (2 for a bad
call, 1 for anything else) is what a script and a person can both act on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from ..errors import ConveyorError

EXIT_INTERRUPTED = 130


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(code)


class ConveyorGroup(click.Group):
    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> NoReturn:
        """Run in non-standalone mode so that every exception passes through one formatter."""
        extra["standalone_mode"] = False
        try:
            code = super().main(args, prog_name, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or "conveyor")
            _fail(f"{exc.format_message()} (see {where} --help)", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("interrupted", EXIT_INTERRUPTED)
        except ConveyorError as exc:
            _fail(str(exc) or type(exc).__name__, 1)
        except OSError as exc:
            _fail(str(exc), 1)
        except Exception as exc:
            if os.environ.get("CONVEYOR_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (set CONVEYOR_DEBUG=1 for the traceback)", 1)
        sys.exit(code if isinstance(code, int) else 0)
