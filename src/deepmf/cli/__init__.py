"""The ``deepmf`` command line: thin shells over the library, errors as one line + exit 2.

The commands live in :mod:`deepmf.cli.commands` (train, evaluate, datasets),
:mod:`deepmf.cli.experiments` (compare, tune, reproduce, recipes) and :mod:`deepmf.cli.use`
(recommend, serve); all register on :data:`deepmf.cli.app.app`.
Nothing heavy (torch, pandas) is imported until a command runs.
"""

from __future__ import annotations

import signal
import sys
import threading

import typer

from deepmf.cli import commands, experiments, use  # noqa: F401  (register them)
from deepmf.cli.app import app, show_defaults
from deepmf.errors import DeepMFError


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that clean-up code runs as for Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line on stderr and exit code 2.

    Ctrl-C exits with 130 and SIGTERM with 143, each with one line; what was being written
    is removed or left resumable by the code that was writing it.
    """
    command = typer.main.get_command(app)
    show_defaults(command)
    previous = _install(signal.SIGTERM, _on_sigterm)
    try:
        code = command.main(args=argv, prog_name="deepmf", standalone_mode=False)
    except typer.Exit as done:
        code = done.exit_code
    except typer.Abort:
        code = 130
    except typer.TyperException as error:  # usage errors: unknown flag, bad value...
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        if message.strip():  # no arguments at all: the help was shown, nothing to add
            print(f"deepmf: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except DeepMFError as error:
        print(f"deepmf: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        code = 130
    except Terminated:
        code = 143
    finally:
        _install(signal.SIGTERM, previous)
    code = code if isinstance(code, int) else 0  # a command's own return value is not a code
    if code in (130, 143):  # typer turns Ctrl-C into a returned 130
        print(f"deepmf: {'interrupted' if code == 130 else 'terminated'}", file=sys.stderr)
    return code


def _install(signum, handler):
    """Set a signal handler where that is allowed (the main thread); return the old one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signum, handler)


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())
