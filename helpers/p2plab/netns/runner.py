"""Running Python inside a lab namespace: ``python -m p2plab.netns.runner call|protocol SPEC RESULT``.

``call``     unpickles ``(function, args, kwargs)`` (or the source of a notebook function), runs it
             and pickles ``(ok, value_or_exception)`` to RESULT.
``protocol`` drives any sans-I/O ``p2plab.sansio.DatagramProtocol`` on a real UDP socket: a
             select loop feeding received datagrams and due timers, sending what the protocol
             queues. Prints ``READY ip port`` once bound, writes a JSON result (events, counts).
"""

from __future__ import annotations

import importlib
import inspect
import json
import pickle
import select
import socket
import sys
import textwrap
import time
import traceback
from typing import Any


def encode_call(target, args: tuple, kwargs: dict) -> bytes:
    """Pickle a call for the runner: by reference when importable, else by source code."""
    if isinstance(target, str):
        return pickle.dumps({"code": target, "args": args, "kwargs": kwargs})
    if not callable(target):
        raise TypeError(f"run_python needs a function or a string of Python code, not {type(target).__name__}")
    spec: dict[str, Any] = {"args": args, "kwargs": kwargs, "name": getattr(target, "__name__", "")}
    module = getattr(target, "__module__", None)
    if module not in (None, "__main__") and "<locals>" not in getattr(target, "__qualname__", ""):
        try:  # by reference; the source goes along in case the module is not importable over there
            spec["func"] = pickle.dumps(target)
        except (pickle.PicklingError, AttributeError, TypeError):
            pass
    try:
        spec["source"] = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        if "func" not in spec:
            raise TypeError(f"cannot send {target!r} to a lab host: define it with 'def' in a module or a "
                            "notebook cell (lambdas and built-ins cannot be sent)") from None
    if spec.get("name") == "<lambda>":
        raise TypeError("cannot send a lambda to a lab host: define the function with 'def'")
    return pickle.dumps(spec)


def _call(spec_path: str, result_path: str) -> int:
    spec = pickle.loads(open(spec_path, "rb").read())
    try:
        if "code" in spec:
            ns: dict[str, Any] = {"__name__": "__main__", "args": spec["args"], "kwargs": spec["kwargs"]}
            exec(compile(spec["code"], "<lab code>", "exec"), ns)
            value = ns.get("result")
        else:
            func = None
            if "func" in spec:
                try:
                    func = pickle.loads(spec["func"])
                except (ImportError, AttributeError):
                    if "source" not in spec:
                        raise
            if func is None:
                ns = {"__name__": "__lab__"}
                exec(compile(spec["source"], f"<{spec['name']}>", "exec"), ns)
                func = ns[spec["name"]]
            value = func(*spec["args"], **spec["kwargs"])
        out = (True, value)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the caller
        out = (False, (exc, traceback.format_exc()))
    try:
        data = pickle.dumps(out)
    except Exception as exc:  # an unpicklable result
        data = pickle.dumps((False, (TypeError(f"the result could not be sent back: {exc}"), "")))
    with open(result_path, "wb") as f:
        f.write(data)
    return 0


def resolve(factory: str):
    module, _, name = factory.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def drive(proto, sock: socket.socket, epoch: float, duration: float, stop_on=(), linger: float = 0.3,
          log=None) -> dict:
    """Run ``proto`` on ``sock`` until ``duration`` passes or an event in ``stop_on`` (then ``linger`` more)."""
    def now() -> float:
        return time.time() - epoch

    events, sent, received = [], 0, 0
    start = now()
    end = start + duration

    def flush() -> None:
        nonlocal sent
        for data, addr in proto.datagrams_to_send():
            try:
                sock.sendto(data, (addr[0], int(addr[1])))
                sent += 1
            except OSError as exc:  # e.g. ECONNREFUSED from an earlier ICMP error: keep going
                events.append({"kind": "send-error", "time": now(), "error": str(exc), "to": list(addr)})
        for ev in proto.events():
            events.append({"kind": ev.kind, "time": ev.time, **{k: _jsonable(v) for k, v in ev.data.items()}})
            if log:
                log(ev)

    proto.start(now(), sock.getsockname())
    flush()
    stopping = False
    while True:
        t = now()
        if t >= end:
            break
        if not stopping and any(e["kind"] in stop_on for e in events):
            stopping, end = True, min(end, t + linger)
        timer = proto.next_timer()
        wait = end - t if timer is None else min(end - t, max(0.0, timer - t))
        readable, _, _ = select.select([sock], [], [], wait)
        if readable:
            try:
                data, addr = sock.recvfrom(65535)
            except OSError:
                continue
            received += 1
            proto.datagram_received(data, addr, now())
            flush()
        timer = proto.next_timer()
        if timer is not None and timer <= now():
            proto.handle_timer(now())
            flush()
    return {"events": events, "sent": sent, "received": received, "local": list(sock.getsockname()),
            "start": start, "end": now()}


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def _protocol(spec_path: str, result_path: str) -> int:
    spec = json.loads(open(spec_path).read())
    kwargs = spec.get("kwargs", {})
    for key, value in list(kwargs.items()):  # JSON turns tuples (addresses) into lists
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
            kwargs[key] = tuple(value)
    proto = resolve(spec["factory"])(**kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((spec["bind"][0], int(spec["bind"][1])))
    print("READY", *sock.getsockname(), flush=True)
    try:
        result = drive(proto, sock, spec["epoch"], spec["duration"], spec.get("stop_on", ()), spec.get("linger", 0.3))
        result["ok"] = True
    except Exception:
        result = {"ok": False, "error": traceback.format_exc(), "events": []}
    finally:
        sock.close()
    with open(result_path, "w") as f:
        json.dump(result, f)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] not in ("call", "protocol"):
        print("usage: python -m p2plab.netns.runner call|protocol SPEC RESULT", file=sys.stderr)
        return 2
    return (_call if argv[0] == "call" else _protocol)(argv[1], argv[2])


if __name__ == "__main__":
    sys.exit(main())
