"""udfkit: our agent library for Kapacitor process and socket UDFs.

A UDF script defines Handler subclasses and calls ``run``::

    if __name__ == "__main__":
        run(MyStreamHandler, batch=MyBatchHandler)

Kapacitor's ``[udf.functions.NAME]`` entry picks the variant with
``args = ["-u", "script.py", "--mode", "batch"]``; ``--socket PATH`` serves a
socket UDF instead of stdin/stdout.
"""

from __future__ import annotations

import argparse
import os
import sys

from udfkit.handler import BATCH, STREAM, Batch, Handler, TaskContext
from udfkit.options import BOOL, DOUBLE, DURATION, INT, STRING, Opt, OptionError

__all__ = [
    "BATCH", "BOOL", "DOUBLE", "DURATION", "INT", "STREAM", "STRING",
    "Batch", "Handler", "Opt", "OptionError", "TaskContext", "run",
]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def run(stream: type[Handler] | None = None, batch: type[Handler] | None = None,
        argv: list[str] | None = None) -> None:
    """Command-line entry of a UDF script: pick the variant and the transport, then serve."""
    parser = argparse.ArgumentParser(description=(stream or batch).__doc__)
    parser.add_argument("--mode", choices=["stream", "batch"],
                        default="stream" if stream else "batch")
    parser.add_argument("--socket", help="serve on this Unix socket instead of stdin/stdout")
    parser.add_argument("--max-batch", type=int, default=16384,
                        help="most points handed to a vectorised handler at once")
    parser.add_argument("--max-delay-ms", type=float, default=0.5,
                        help="after a small read, how long points may gather before the next")
    parser.add_argument("--default-gc", action="store_true",
                        help="keep CPython's collector settings (udfkit.gc_settings; to compare)")
    args = parser.parse_args(argv)
    handler_cls = stream if args.mode == "stream" else batch
    if handler_cls is None:
        parser.error(f"this UDF has no {args.mode} variant")
    agent_args = {
        "max_batch": args.max_batch,
        "max_delay": args.max_delay_ms / 1000.0,
        "profiling": _truthy(os.environ.get("PROFILING_MODE")),
        "tune_gc": not args.default_gc,
        # where the state is kept between runs (udfkit.statefile); unset: Kapacitor's only
        "state_dir": os.environ.get("UDF_STATE_DIR") or None,
    }
    if args.socket:
        from udfkit.server import SocketServer

        SocketServer(args.socket, handler_cls, **agent_args).serve_forever()
        return
    from udfkit.agent import Agent

    agent = Agent(handler_cls, sys.stdin.fileno(), sys.stdout.fileno(), **agent_args)
    agent.stop_on_signals()
    sys.exit(agent.run())
