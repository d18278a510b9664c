"""Tracebacks as Python prints them, but for a database error's message: PostgreSQL quotes in
it the row or key it refused (a clinician's comment), whatever the statement's hidden
parameters. A logged exception, asyncio's "never retrieved", and an exception nothing caught
(in any thread, or unraisable) come through here; an exception in a worker process's start is
logged by ``app.app_from_environment``, which multiprocessing would print whole."""

from __future__ import annotations

import logging
import re
import sqlite3
import sys
import threading
import traceback
from types import (
    AsyncGeneratorType,
    BuiltinFunctionType,
    CoroutineType,
    FunctionType,
    GeneratorType,
    MethodType,
    TracebackType,
)
from typing import Any

from sqlalchemy.exc import StatementError

uncaught = logging.getLogger("cds_service.uncaught")


def database_error(error: BaseException) -> str:
    """A database error's class and SQLSTATE, never its message; but for a connection psycopg
    could not open ("connection failed: …", "connection is bad: …", "failed to resolve host …"),
    whose message is libpq's about the host, port, database or user an operator needs to mend,
    before any statement, and for a connection option libpq does not know (named, no value)."""
    original = getattr(error, "orig", None) or error
    state = getattr(original, "sqlstate", None) or getattr(original, "sqlite_errorname", None)
    said = f"{type(original).__name__}{f' {state}' if state else ''}"
    if _for_the_operator(original):
        told = str(original).strip()
        said += f": {_option_named(told) if type(original).__name__ == 'ProgrammingError' else _unquoted(told)}"
    return said


def _unquoted(message: str) -> str:
    """libpq's "invalid integer value "x" for connection option "keepalives"" and "invalid sslmode
    value: "x"", told without x: a value in the URL's query can be a password's tail, as an
    unknown option's name can."""
    return _OPTION_VALUE.sub(r"invalid \1value\2 (not repeated)", message)


_OPTION_VALUE = re.compile(r'invalid (\w+ )?value(:?) "[^"]*"')


def _option_named(message: str) -> str:
    """libpq's "invalid connection option "x"", told without x: an unknown name can be the tail of
    a password whose ``&`` was not written ``%26`` (``?password=s3c&ret=1`` names "ret", and a
    tail close to an option, ``&report=``, is as likely). Only the option of libpq's own that it
    is close to is named."""
    import difflib  # only on a start that fails

    from psycopg.pq import Conninfo

    name = (message.split('"')[1:2] or [""])[0]  # both of its wordings quote the name
    known = [option.keyword.decode() for option in Conninfo.get_defaults()]
    meant = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    hint = f' (did you mean "{meant[0]}"?)' if meant else ""
    return f"an unknown connection option, not named: it may be part of a password, whose & is written %26{hint}"


# How psycopg's errors begin whose words (libpq's, before any statement) name what an operator
# mends and never a value: a connection it could not open, by class; a connection option it
# does not know (``?passwrd=``: told as a bare "ProgrammingError", no one could see which). Its
# other errors without a SQLSTATE ("consuming input failed: …") can come in the middle of a
# statement, after the server's answer.
_TOLD = {
    "OperationalError": ("connection failed:", "connection is bad:", "failed to resolve host"),
    "ProgrammingError": ("invalid URI query parameter:", "invalid connection option "),
}


def _for_the_operator(error: BaseException) -> bool:
    kind = type(error)
    return (
        kind.__name__ in _TOLD
        and kind.__module__.startswith("psycopg")
        and getattr(error, "sqlstate", None) is None
        and str(error).startswith(_TOLD[kind.__name__])
    )


def _is_database_error(error: BaseException) -> bool:
    return isinstance(error, StatementError | sqlite3.Error) or type(error).__module__.startswith("psycopg")


def exception_text(error: BaseException, seen: set[int] | None = None) -> str:
    """The traceback of ``error`` and of the exceptions it was raised from or during (and, for a
    group, in it), as Python prints it but for a database error's message (``database_error``).
    ``seen``: the exceptions already told, shared with a group's members, so a loop ends."""
    seen = set() if seen is None else seen
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_database_error(current):
            said = database_error(current)
        else:
            said = "".join(traceback.format_exception_only(current)).rstrip()
        if isinstance(current, BaseExceptionGroup):  # each of its exceptions told the same way
            said += "".join(
                f"\n+-- {n} --\n{exception_text(one, seen) or '(told in this traceback already)'}"
                for n, one in enumerate(current.exceptions, 1)
            )
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{said}" if frames else said)
        following = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if following is not None and id(following) not in seen:
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n"
                if following is current.__cause__
                else "\nDuring handling of the above exception, another exception occurred:\n"
            )
        current = following
    return "\n".join(reversed(parts))


class SafeExceptions(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        if ei[1] is None:
            return super().formatException(ei)
        try:
            return exception_text(ei[1])
        except Exception:  # a formatter that raises loses the line, and Python then prints it whole
            return f"{type(ei[1]).__name__} (its traceback could not be written)"


class AsyncioSays(logging.Filter):
    """asyncio's "Task exception was never retrieved" puts the task's repr, the exception's text
    with it, in the message: the message's first line is kept, the traceback tells the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            record.msg, record.args = record.getMessage().split("\n", 1)[0], None
        return True


def _tell(said: str, error: BaseException | None, error_type: type[BaseException]) -> None:
    if error is None:
        uncaught.error("%s: %s", said, error_type.__name__)
    else:
        uncaught.error("%s", said, exc_info=error)


def _main_failed(error_type: type[BaseException], error: BaseException, _: TracebackType | None) -> None:
    # Ctrl-C too: Python would print the exception it interrupted the handling of, whole.
    _tell("Interrupted" if issubclass(error_type, KeyboardInterrupt) else "Uncaught exception", error, error_type)


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:  # as Python's own hook: a thread's exit is not a failure
        return
    name = args.thread.name if args.thread is not None else "unknown"
    _tell(f"Uncaught exception in thread {name}", args.exc_value, args.exc_type)


# What an unraisable exception's object is named by: its own name for these (code), else its class's.
_CODE = (type, FunctionType, MethodType, BuiltinFunctionType, GeneratorType, CoroutineType, AsyncGeneratorType)


def _unraisable(args: sys.UnraisableHookArgs) -> None:
    """Python's own line names the object by its repr, which shows what it holds."""
    try:
        thing = args.object
        named = thing.__qualname__ if isinstance(thing, _CODE) else type(thing).__qualname__
        said = args.err_msg or "Exception ignored in"
        _tell(f"{said} {named}" if thing is not None else said, args.exc_value, args.exc_type)
    except Exception:  # a hook that raises has Python print both exceptions whole
        uncaught.error("Exception ignored (it could not be described)")


def tell_uncaught() -> None:
    """An exception nothing caught (in the main thread, another thread, a finaliser or a closed
    generator) goes to the log, where Python's hooks would print it to stderr whole: a database
    error's text in it, and lines a JSON log reader cannot read.
    A hook someone else set (a debugger, an APM agent, pytest) is theirs: it is kept."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _main_failed
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _thread_failed
    if sys.unraisablehook is sys.__unraisablehook__:
        sys.unraisablehook = _unraisable
