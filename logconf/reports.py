"""What logconf says on stderr when a record cannot be written, and whose fault it is.

Two kinds of failure, told apart by where they happen:

- a record that cannot be formatted (``log.info("%s %s", 1)``) is the caller's bug. It is
  reported each time, as stdlib logging's ``Handler.handleError`` reports it: the traceback, the
  call stack down to the logging call, the message and its arguments;
- a file that cannot be written (a full disk, a removed mount) is reported once per outage,
  with a count of the records dropped when writing works again (:class:`WriteFailures`).

Both go to fd 2 whatever ``sys.stderr`` is, and neither ever raises.
"""

from __future__ import annotations

import io
import logging
import os
import traceback

__all__ = ["WriteFailures", "caller_error", "tell"]

_LOGGING_DIR = os.path.dirname(logging.__file__)
_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


def tell(message: str) -> None:
    """Write one line of logconf's own on fd 2, whatever ``sys.stderr`` is; never raise."""
    try:
        os.write(2, message.encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def caller_error(record: logging.LogRecord, error: BaseException) -> None:
    """Report a record that could not be formatted as stdlib logging does, with the call site; never raise."""
    if not logging.raiseExceptions:
        return  # stdlib's switch for production: say nothing, as its handlers do
    try:
        out = io.StringIO()
        out.write("--- Logging error ---\n")
        traceback.print_exception(type(error), error, error.__traceback__, None, out)
        frame = error.__traceback__.tb_frame if error.__traceback__ else None
        while frame is not None and os.path.dirname(frame.f_code.co_filename) in (_LOGGING_DIR, _OWN_DIR):
            frame = frame.f_back  # out of logging and logconf, to the caller's logging call
        if frame is not None:
            out.write("Call stack:\n")
            traceback.print_stack(frame, file=out)
        out.write(f"Logged from file {record.pathname}, line {record.lineno}\n")
        try:
            out.write(f"Message: {record.msg!r}\nArguments: {record.args}\n")
        except Exception:
            out.write("Unable to print the message and arguments - possible formatting error.\n")
        tell(out.getvalue())
    except Exception:
        tell(f"--- Logging error ---\nLogged from file {record.pathname}, line {record.lineno}\n")


class WriteFailures:
    """One handler's run of failed writes: told once when it starts, counted, told again when it ends."""

    def __init__(self) -> None:
        self.failing = False
        self.dropped = 0

    def failed(self, path: str, error: BaseException | None) -> None:
        """Count a record dropped because ``path`` could not be written; tell the first of a run."""
        self.dropped += 1
        if self.failing:
            return
        self.failing = True
        tell(
            f"logconf: cannot write {path}: {error!s}; records are dropped and this "
            "error is not repeated until writing works again\n"
        )

    def recovered(self, path: str) -> None:
        """Tell that ``path`` is written again, and how many records the outage cost."""
        self.failing = False
        dropped, self.dropped = self.dropped, 0
        tell(f"logconf: writing {path} again; {dropped} records were dropped\n")
