"""The ``artstyle`` command: ``artstyle CONTENT STYLE [STYLE ...] -o OUTPUT [options]``.

The only place (with :mod:`~artstyle.cli.report`) that prints, shows progress and chooses
exit codes: each job runs in the run frame (:func:`artstyle.runs.execute`), and its
outcome becomes a line and an exit code (see :mod:`artstyle.cli.report`).
``--checkpoint-every N`` keeps the run's state in ``OUTPUT.ckpt`` and ``--resume``
continues from it (see :mod:`artstyle.runs.checkpoint`). ``artstyle reproduce OUTPUT``
re-runs a picture from the parameters embedded in it (:mod:`artstyle.cli.reproduce`);
``artstyle serve`` starts the web page (:mod:`artstyle.cli.serve`); ``artstyle video``
stylizes a clip (:mod:`artstyle.cli.video`); ``artstyle batch`` many pictures
(:mod:`artstyle.cli.batch`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from artstyle.cli.flags import EXIT_USAGE, build_parser, job_from_args, speaks_flags
from artstyle.cli.report import guarded, run_job


@speaks_flags
def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["reproduce"]:
        from artstyle.cli.reproduce import main as reproduce

        return reproduce(arguments[1:])
    if arguments[:1] == ["batch"]:
        from artstyle.cli.batch import main as batch

        return batch(arguments[1:])
    if arguments[:1] == ["video"]:
        from artstyle.cli.video import main as video

        return video(arguments[1:])
    if arguments[:1] == ["serve"]:
        from artstyle.cli.serve import serve_main

        return serve_main(arguments[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    return guarded(lambda signals: run_job(job_from_args(args), signals, args.quiet), args.max_pixels)


if __name__ == "__main__":
    sys.exit(main())
