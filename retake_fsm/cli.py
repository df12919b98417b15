"""The command line: the only argument parser and the only place log sinks are set up.

Each command lives in `retake_fsm/commands/<name>.py` as `main(args, app) -> int`;
no command imports this module. An expected failure (`RetakeError`) prints one
line to stderr and exits with its code; the traceback goes only to the debug log
under the state dir (`-v` also shows it on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import ExitCode, RetakeError

if TYPE_CHECKING:
    from .app import App

COMMANDS = (
    "run", "register", "verify", "status", "history", "diagram", "validate",
    "stop", "chat", "sandbox", "demo",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="retake-fsm",
        description="Take an AI agent live on retake.tv and keep it live.",
    )
    p.add_argument("--states", metavar="FILE", help="the machine definition (default: states.yaml)")
    p.add_argument("--profile", help="which agent (default: $RETAKE_PROFILE or 'default')")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set chat.poll=2s (repeatable)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more output (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="go live (or resume) and stay live until stopped")
    run.add_argument("--until", default="live", metavar="STATE",
                     help="stop driving once this state is reached (default: live, then stay live)")
    run.add_argument("--display", help="X display for Xvfb, ':N' or 'auto'")
    run.add_argument("--responder", metavar="CMD", help="chat responder command (JSON lines)")
    run.add_argument("--exit-when-reached", action="store_true",
                     help="exit once --until is reached instead of staying live")
    # `run --set k=v` as well as `--set k=v run` (kept apart: a subparser default would
    # overwrite the global list); App.from_args appends these after the global ones.
    run.add_argument("--set", dest="run_overrides", action="append", default=[],
                     metavar="KEY=VALUE", help="override a setting (same as the global --set)")

    reg = sub.add_parser("register", help="create the agent's retake.tv account")
    reg.add_argument("--name")
    reg.add_argument("--description")
    reg.add_argument("--image-url")
    reg.add_argument("--wallet", help="Solana public key (base58)")
    reg.add_argument("--ticker", help="token symbol, 1-10 characters")
    reg.add_argument("--force", action="store_true", help="overwrite existing credentials")

    ver = sub.add_parser("verify", help="Twitter/X verification by the human operator")
    ver.add_argument("--tweet-url", help="the URL of the tweet the human posted")
    ver.add_argument("--status", action="store_true", help="show the platform's verdict")

    st = sub.add_parser("status", help="where the agent stands")
    st.add_argument("--json", action="store_true")
    st.add_argument("--offline", action="store_true", help="do not ask the platform")

    hist = sub.add_parser("history", help="the journal: transitions, retries, errors")
    hist.add_argument("--json", action="store_true")
    hist.add_argument("-n", type=int, default=20, metavar="N", help="last N entries (0: all)")

    dia = sub.add_parser("diagram", help="draw the machine, current state marked")
    dia.add_argument("--format", choices=("mermaid", "dot", "svg", "png"), default="mermaid")
    dia.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")

    val = sub.add_parser("validate", help="check a states.yaml")
    val.add_argument("file", nargs="?", help="default: the active definition")

    sub.add_parser("stop", help="stop the stream (the running `run`, or leftovers)")

    chat = sub.add_parser("chat", help="talk in the stream's chat")
    chat_sub = chat.add_subparsers(dest="chat_command", metavar="ACTION", required=True)
    send = chat_sub.add_parser("send", help="send one message")
    send.add_argument("text")
    tail = chat_sub.add_parser("tail", help="print comments as they arrive")
    tail.add_argument("-n", type=int, default=20, help="show the last N first")
    tail.add_argument("--no-follow", action="store_true", help="print and exit")

    sb = sub.add_parser("sandbox", help="run a local retake.tv (API + RTMP ingest) on 127.0.0.1")
    sb.add_argument("--port", type=int, default=8787)
    sb.add_argument("--rtmp-port", type=int, default=1935)
    sb.add_argument("--data-dir", help="keep the sandbox's state here (default: a temp dir)")
    sb.add_argument("--faults", action="append", default=[], metavar="SPEC",
                    help="e.g. 'rate=0.2,status=503' or 'path=stream/status,latency=500ms'")
    sb.add_argument("--auto-verify", action=argparse.BooleanOptionalAction, default=True,
                    help="tweets contain the code (default: yes)")

    demo = sub.add_parser("demo", help="sandbox + register + verify + run: a real go-live locally")
    demo.add_argument("--port", type=int, default=0, help="sandbox API port (default: free)")
    demo.add_argument("--display", default="auto")
    return p


def _setup_logging(verbosity: int, quiet: bool) -> None:
    from loguru import logger

    from .redact import redact

    logger.remove()
    def _patch(record: Any) -> None:
        record["message"] = redact(record["message"])

    logger.configure(patcher=_patch)
    level = "WARNING" if quiet else ("DEBUG" if verbosity >= 2 else "INFO")
    fmt = "<level>{level: <7}</level> {message}" if verbosity == 0 else (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> {name}: {message}"
    )
    logger.add(sys.stderr, level=level, format=fmt, backtrace=False, diagnose=False)


def _report(exc: BaseException, app: App | None, verbosity: int) -> None:
    """One line for the user; the traceback only to the debug log (and stderr with -v)."""
    from loguru import logger

    from .redact import redact

    if app is not None:
        app.log_traceback(exc)
    if verbosity:
        import traceback

        logger.debug("traceback:\n{}", "".join(traceback.format_exception(exc)).rstrip())
    text = redact(str(exc))
    lines = text.splitlines() or [type(exc).__name__]
    prefix = "" if len(lines) > 1 else "retake-fsm: "
    for line in lines:
        print(f"{prefix}{line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return ExitCode.USAGE
    _setup_logging(args.verbose, args.quiet)
    from .app import App

    app: App | None = None
    try:
        app = App.from_args(args)
        module = importlib.import_module(f".commands.{args.command}", __package__)
        return int(module.main(args, app))
    except RetakeError as exc:
        _report(exc, app, args.verbose)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("retake-fsm: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `retake-fsm history --json | head`: the reader left, not a bug
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no noise at exit
        return ExitCode.FAILURE
    except Exception as exc:  # a bug: still one line, and where to find the details
        _report(exc, app, 1)
        where = f" (details in {app.paths.debug_log})" if app is not None else ""
        print(f"retake-fsm: internal error{where}; please report it", file=sys.stderr)
        return ExitCode.FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
