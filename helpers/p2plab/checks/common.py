"""What every lab check shares: a result object, friendly printing, and "never a traceback".

A check function takes the learner's object (a function or a class), runs real tests of it and
returns a ``CheckResult``. It prints one friendly message and **never raises**:

* the learner's code still says ``raise NotImplementedError()``: "not started yet - begin at ...",
* a test fails: a hint pointing at the concept (never the answer),
* the learner's code crashes: the exception type and message, and where to look - no traceback.

Writing a check::

    @check("sockets", start_at="the cell 'Exercise 1', function start_echo")
    def check_echo(start_echo):
        ...
        if nothing_came_back:
            fail("nothing came back to Alice: ...hint...")
        return "Alice got her bytes back."       # the success message

``fail(hint)`` stops the check with that hint; returning a string passes with that message.
"""

from __future__ import annotations

import functools
import os
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_NOT_LEARNER = tuple({_PACKAGE_DIR, *(os.path.abspath(p) + os.sep for p in {
    sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})})
PASS, FAIL, NOT_STARTED, ERROR = "passed", "failed", "not started", "error"
_SYMBOL = {PASS: "✔", FAIL: "✘", NOT_STARTED: "…", ERROR: "✘"}


class CheckFailed(Exception):
    """Raised inside a check by ``fail(hint)``: the test found a mistake."""

    def __init__(self, hint: str, details: dict | None = None) -> None:
        super().__init__(hint)
        self.hint = hint
        self.details = details or {}


def fail(hint: str, **details: Any) -> None:
    """Stop the running check: the learner's object failed a test; ``hint`` says what to rethink."""
    raise CheckFailed(hint, details)


@dataclass
class CheckResult:
    """The outcome of one check: ``passed``, a ``status`` and the ``message`` that was printed."""

    lab: str
    name: str
    status: str
    message: str
    details: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def not_started(self) -> bool:
        return self.status == NOT_STARTED

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{_SYMBOL[self.status]} {self.name}: {self.message}"

    def __repr__(self) -> str:
        return f"CheckResult(lab={self.lab!r}, name={self.name!r}, status={self.status!r})"

    # The message was printed when the check ran; showing the result again in a notebook adds nothing.
    def _ipython_display_(self) -> None:
        pass


def _where(exc: BaseException) -> str:
    """The learner's function and line where ``exc`` happened (the innermost frame not in p2plab)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if not os.path.abspath(f.filename).startswith(_NOT_LEARNER)]
    if not mine:
        return ""
    f = mine[-1]
    code = f" ({f.line.strip()})" if f.line else ""
    return f" in {f.name}, line {f.lineno}{code}"


def _is_not_started(exc: BaseException) -> bool:
    return isinstance(exc, NotImplementedError)


def check(lab: str, start_at: str, quiet: bool = False) -> Callable:
    """Decorate a check function: catches everything, prints one message, returns a CheckResult.

    ``start_at`` names the cell/function where the learner begins ("not started yet - begin at
    <start_at>"). Pass ``quiet=True`` to the decorated function to suppress printing.
    """

    def wrap(fn: Callable[..., str | None]) -> Callable[..., CheckResult]:
        @functools.wraps(fn)
        def run(*args: Any, quiet: bool = quiet, **kwargs: Any) -> CheckResult:
            name = fn.__name__
            try:
                msg = fn(*args, **kwargs)
                result = CheckResult(lab, name, PASS, msg or "passed.")
            except CheckFailed as exc:
                result = CheckResult(lab, name, FAIL, exc.hint, exc.details)
            except NotImplementedError:
                result = CheckResult(lab, name, NOT_STARTED, f"not started yet — begin at {start_at}.")
            except RecursionError:
                result = CheckResult(lab, name, ERROR, "your code called itself without end (RecursionError); "
                                     "look for a function that calls itself by mistake.")
            except Exception as exc:  # the learner's code crashed: say what and where, no traceback
                result = CheckResult(
                    lab, name, ERROR,
                    f"your code raised {type(exc).__name__}: {exc}{_where(exc)}. Fix that first, then run this "
                    f"check again.")
            if not quiet:
                print(str(result))
            return result

        run.start_at = start_at  # type: ignore[attr-defined]
        run.lab = lab  # type: ignore[attr-defined]
        return run

    return wrap


def try_it(fn: Callable, *args: Any, _label: str | None = None, **kwargs: Any) -> Any:
    """Call the learner's ``fn`` for a demo cell: returns its result, or None after printing
    "not started yet" (NotImplementedError) or a one-line error. Never raises."""
    name = _label or getattr(fn, "__name__", "your code")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        print(f"… {name} is not started yet — write it above, then run this cell again.")
    except Exception as exc:
        print(f"✘ {name} raised {type(exc).__name__}: {exc}{_where(exc)}")
    return None


def attempt(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn``; NotImplementedError propagates (means "not started")."""
    return fn(*args, **kwargs)


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def endpoint(x: Any) -> tuple[str, int] | None:
    """``x`` as an ``(ip, port)`` tuple if it looks like one, else None."""
    try:
        ip, port = x
    except (TypeError, ValueError):
        return None
    if not isinstance(ip, str) or not isinstance(port, int) or isinstance(port, bool):
        return None
    return ip, port


__all__ = ["CheckResult", "CheckFailed", "check", "fail", "attempt", "try_it", "close", "is_number", "endpoint",
           "PASS", "FAIL", "NOT_STARTED", "ERROR"]
