"""``artstyle serve``: start the web page (:mod:`artstyle.web.page`) on this machine.

Listens on 127.0.0.1 by default (this computer only); uploads and the files the page
shows live in a private temporary directory that is removed on exit. Ctrl-C stops the
server (exit code 130), SIGTERM too (exit code 0). The flags are parsed and checked
before PyTorch (and Gradio) are imported.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artstyle.cli.flags import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser, parse, speaks_flags
from artstyle.config import Config
from artstyle.errors import ArtstyleError, ConfigError
from artstyle.web.limits import MEGABYTE, Limits

if TYPE_CHECKING:
    from artstyle.api import Stylizer
    from artstyle.web.studio import Studio

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
INSTALL_HINT = "pip install -e '.[web]'"


def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def build_serve_parser() -> argparse.ArgumentParser:
    limits = Limits()
    parser = Parser(
        prog="artstyle serve",
        description="Start the artstyle web page (live preview, Start/Stop, download). Needs: " + INSTALL_HINT,
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, "
        "this computer only; 0.0.0.0 opens it to the network, with no login)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument("--weights", default="bundled", help="VGG19 weights, as for the artstyle command")
    parser.add_argument("--device", default="auto", help="compute device, as for the artstyle command")
    parser.add_argument(
        "--max-upload-mb",
        type=_positive(float),
        default=limits.max_upload_bytes / MEGABYTE,
        metavar="MB",
        help="largest upload accepted (default: %(default)g)",
    )
    parser.add_argument(
        "--max-megapixels",
        type=_positive(float),
        default=limits.max_pixels / 1e6,
        metavar="MP",
        help="most pixels in an uploaded image (default: %(default)g)",
    )
    parser.add_argument(
        "--max-size",
        type=_positive(int),
        default=limits.max_size,
        metavar="PX",
        help="largest picture a job may ask for (default: %(default)s)",
    )
    parser.add_argument(
        "--max-iterations",
        type=_positive(int),
        default=limits.max_iterations,
        metavar="N",
        help="most iterations a job may ask for (default: %(default)s)",
    )
    return parser


def gradio_installed() -> bool:
    """Whether Gradio can be imported (found without importing it, which takes seconds)."""
    try:
        return importlib.util.find_spec("gradio") is not None
    except (ImportError, ValueError):  # ValueError: a module entry without a spec
        return False


@speaks_flags
def serve_main(argv: Sequence[str]) -> int:
    """``artstyle serve``: returns the exit code."""
    args = parse(build_serve_parser(), argv)
    if isinstance(args, int):
        return args
    if not 0 < args.port < 65536:
        print(f"artstyle serve: error: --port: expected 1 to 65535, got {args.port}", file=sys.stderr)
        return EXIT_USAGE
    if not gradio_installed():
        print(
            f"artstyle serve: error: the web page needs Gradio, which is not installed: {INSTALL_HINT}", file=sys.stderr
        )
        return EXIT_FAILED
    try:
        limits = checked_limits(args)
    except ConfigError as exc:
        print(f"artstyle serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from artstyle.api import Stylizer  # PyTorch from here on

    try:
        stylizer = Stylizer(weights=args.weights, device=args.device)
        stylizer.network(Config().layers, "max")  # load and check the weights now, not at the first job
    except ConfigError as exc:
        print(f"artstyle serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ArtstyleError as exc:
        print(f"artstyle serve: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return _serve(args.host, args.port, stylizer, limits)


def checked_limits(args: argparse.Namespace) -> Limits:
    """The server's limits of the flags, with ``--weights`` and ``--device`` checked as the
    :class:`~artstyle.api.Stylizer` checks them, before PyTorch is imported (ConfigError)."""
    Config(weights=args.weights, device=args.device)
    try:
        return Limits(
            max_upload_bytes=round(args.max_upload_mb * MEGABYTE),
            max_pixels=round(args.max_megapixels * 1e6),
            max_size=args.max_size,
            max_iterations=args.max_iterations,
        )
    except ConfigError as exc:  # a limit so small that it rounds to nothing
        raise ConfigError(f"a limit rounds to nothing ({exc})") from None


def _serve(host: str, port: int, stylizer: Stylizer, limits: Limits) -> int:
    from artstyle.runs import Signals, Terminated
    from artstyle.web.studio import Studio

    # Uploads and the files the page shows live in a private directory, removed on exit.
    private = Path(tempfile.mkdtemp(prefix="artstyle-serve-"))
    os.environ["GRADIO_TEMP_DIR"] = str(private)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    app = None
    try:
        with Signals().installed():  # Ctrl-C raises KeyboardInterrupt, SIGTERM Terminated
            app = _launch(Studio(stylizer, limits, upload_root=private), host, port)
            if app is None:
                return EXIT_FAILED
            _announce(host, port)
            # A wait with a timeout, woken twice a second: a signal the kernel hands to one
            # of the server's threads runs Python's handler only when the main thread wakes.
            idle = threading.Event()
            while not idle.wait(0.5):
                pass
    except KeyboardInterrupt:
        print("artstyle serve: interrupted; server stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("artstyle serve: terminated; server stopped", file=sys.stderr)
        return EXIT_OK
    finally:
        if app is not None:
            _close(app)
        shutil.rmtree(private, ignore_errors=True)
    return EXIT_OK


def _close(app: Any, timeout: float = 10.0) -> None:
    """Close the page's server, waiting at most ``timeout`` s (a browser still connected can
    hold the web server's graceful shutdown open; Ctrl-C must stop the process all the same)."""

    def close() -> None:
        with contextlib.suppress(Exception):
            app.close(verbose=False)

    closing = threading.Thread(target=close, name="artstyle-close", daemon=True)
    closing.start()
    closing.join(timeout)


def _launch(studio: Studio, host: str, port: int) -> Any:
    """The page, listening; None (with the reason printed) when it cannot listen there."""
    from artstyle.web.page import CSS, build_app

    app = build_app(studio)
    try:
        app.launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=True,
            share=False,
            max_file_size=studio.limits.max_upload_bytes,
            quiet=True,
            show_error=False,
            footer_links=[],
            enable_monitoring=False,
            mcp_server=False,
            ssr_mode=False,
            run_history=False,
            css=CSS,
        )
    except OSError:  # Gradio's message names its own settings, not ours
        print(
            f"artstyle serve: error: cannot listen on {host}:{port} (the port is taken, or the address is not this "
            "machine's); try another --port or --host",
            file=sys.stderr,
        )
        with contextlib.suppress(Exception):
            app.close(verbose=False)
        return None
    return app


def _announce(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    print(f"artstyle serve: the page is at http://{shown}:{port}/ (Ctrl-C stops the server)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            "artstyle serve: warning: anyone who can reach this address can use the page; it has no login",
            file=sys.stderr,
            flush=True,
        )
