"""Friendly errors: a table of learner mistakes and what p2plab must say about each.

Every row is one mistake. It must raise a documented p2plab error (a subclass of P2PLabError,
defined in p2plab.errors with a docstring) whose message says

* what was wrong (the value the learner gave),
* what is allowed (the rule), and
* an example of something that works,

and the traceback a learner sees must not wander into library code (no frames outside p2plab
and this test, no "During handling of the above exception" chain from ipaddress and friends).

Rows for modules that do not exist yet are skipped; add rows as modules arrive.
"""

from __future__ import annotations

import importlib
import inspect
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from p2plab import errors

P2PLAB_DIR = Path(errors.__file__).resolve().parent
THIS_FILE = Path(__file__).resolve()


@dataclass
class Mistake:
    id: str
    module: str  # the module under test; the row is skipped when it does not exist yet
    attempt: Any  # callable(module, tmp_path) that makes the mistake
    error: str  # name of the class in p2plab.errors
    wrong: str  # the message repeats what was wrong ...
    allowed: str  # ... says what is allowed ...
    example: str  # ... and gives an example


def _not_a_pcap(trace, tmp_path):
    path = tmp_path / "notes.pcap"
    path.write_text("these are my notes, not a capture\n")
    return trace.Trace.from_pcap(path)


MISTAKES = [
    Mistake("port too big", "p2plab.addresses", lambda m, _: m.check_port(620000),
            "InvalidPortError", "620000", "0 to 65535", "e.g. 5000"),
    Mistake("port as text", "p2plab.addresses", lambda m, _: m.check_port("http"),
            "InvalidPortError", "'http'", "0-65535", "e.g. 5000"),
    Mistake("octet above 255", "p2plab.addresses", lambda m, _: m.check_ip("192.168.1.300"),
            "InvalidAddressError", "'192.168.1.300'", "0-255", "e.g. '192.168.1.10'"),
    Mistake("host name, not an address", "p2plab.addresses", lambda m, _: m.check_ip("alice.example"),
            "InvalidAddressError", "'alice.example'", "numeric address", "e.g. '192.168.1.10'"),
    Mistake("address without port", "p2plab.addresses", lambda m, _: m.check_endpoint("192.0.2.1"),
            "InvalidAddressError", "'192.0.2.1'", "'ip:port'", "e.g. '192.0.2.1:3478'"),
    Mistake("unknown NAT preset", "p2plab.nat", lambda m, _: m.preset("super-cone"),
            "UnknownPresetError", "'super-cone'", "port-restricted-cone", "Example: preset("),
    Mistake("unknown mapping behaviour", "p2plab.nat", lambda m, _: m.NatBehavior(mapping="cone"),
            "UnknownPresetError", "'cone'", "endpoint-independent, address-dependent", "e.g. mapping="),
    Mistake("negative latency", "p2plab.topology",
            lambda m, _: m.Topology().add_host("alice", "192.0.2.10", latency=-1),
            "ConfigurationError", "got -1", ">= 0", "e.g. 0.010"),
    Mistake("unknown world", "p2plab.world", lambda m, _: m.choose_world("real"),
            "ConfigurationError", "'real'", "'netns'", "e.g. choose_world('sim')"),
    Mistake("trace with no packets", "p2plab.trace", lambda m, _: m.Trace([], []).require_packets(),
            "TraceError", "no packets", "run the scenario", "e.g."),
    Mistake("text file given as a pcap", "p2plab.trace", _not_a_pcap,
            "TraceError", "is not a pcap", ".pcap or .pcapng", "e.g. tcpdump -w capture.pcap"),
]


# Messages known to miss one of the three parts, with the reason; strict xfail, so fixing the
# message makes the test fail until the row is removed from here.
KNOWN_GAPS = {
}


def _id(row):
    return row.id


def _make_mistake(row: Mistake, tmp_path) -> BaseException:
    try:
        module = importlib.import_module(row.module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("p2plab"):
            pytest.skip(f"{row.module} does not exist yet")
        raise
    try:
        row.attempt(module, tmp_path)
    except Exception as exc:  # noqa: BLE001 - we inspect whatever comes out
        return exc
    pytest.fail(f"{row.id}: no error was raised")


@pytest.mark.parametrize("row", MISTAKES, ids=_id)
def test_error_class_is_a_documented_p2plab_error(row, tmp_path):
    exc = _make_mistake(row, tmp_path)
    expected = getattr(errors, row.error)
    assert isinstance(exc, expected), f"{row.id}: expected {row.error}, got {type(exc).__name__}: {exc}"
    cls = type(exc)
    assert issubclass(cls, errors.P2PLabError)
    assert cls.__module__ == "p2plab.errors", f"{cls.__name__} should live in p2plab.errors"
    assert inspect.getdoc(cls), f"{cls.__name__} has no docstring"


@pytest.mark.parametrize("row", MISTAKES, ids=_id)
def test_message_says_what_was_wrong_what_is_allowed_and_an_example(row, tmp_path, request):
    if row.id in KNOWN_GAPS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[row.id]))
    msg = str(_make_mistake(row, tmp_path))
    assert row.wrong in msg, f"{row.id}: the message does not repeat what was wrong ({row.wrong!r}): {msg}"
    assert row.allowed in msg, f"{row.id}: the message does not say what is allowed ({row.allowed!r}): {msg}"
    assert row.example in msg, f"{row.id}: the message gives no example ({row.example!r}): {msg}"


@pytest.mark.parametrize("row", MISTAKES, ids=_id)
def test_traceback_stays_out_of_library_code(row, tmp_path):
    exc = _make_mistake(row, tmp_path)
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__), (
        f"{row.id}: the learner would see a chained traceback from {type(exc.__context__).__name__}")
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<string>" and frame.name == "__init__":
            continue  # the __init__ that @dataclass writes for a p2plab class
        path = Path(frame.filename).resolve()
        assert path == THIS_FILE or P2PLAB_DIR in path.parents, (
            f"{row.id}: traceback has a frame in library code: {frame.filename}:{frame.lineno}")
    shown = "".join(traceback.format_exception(exc))
    assert "During handling of the above exception" not in shown
    assert "site-packages" not in shown


def test_a_lab_check_called_before_the_code_is_written_says_where_to_begin(capsys):
    """The last mistake of the table: running a self-check on a stub. It prints one friendly line
    (no traceback) and returns a result that says 'not started'."""
    from p2plab.checks import sockets

    def start_echo(*args, **kwargs):
        # YOUR CODE HERE
        raise NotImplementedError()

    result = sockets.check_echo(start_echo)
    out = capsys.readouterr().out
    assert not result.passed and result.status == "not started"
    assert "not started yet" in out and "begin at" in out
    assert "Traceback" not in out
