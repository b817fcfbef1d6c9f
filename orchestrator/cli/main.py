"""The root ``fuzzorch`` command and the mapping of failures to exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer
from rich.logging import RichHandler
from typer.exceptions import TyperException

from harnesses.errors import HarnessError
from orchestrator.cli import (
    campaigns,
    corpus,
    crashes,
    db,
    demo,
    fuzz,
    policies,
    report,
    repos,
    run,
    service,
    tokens,
)
from orchestrator.cli.context import CliContext, build_context
from orchestrator.cli.exitcodes import EXIT_INFRA, EXIT_OK, EXIT_USAGE
from orchestrator.cli.output import error, stderr
from orchestrator.errors import FuzzorchError
from workers.errors import WorkerError

app = typer.Typer(
    name="fuzzorch",
    help="Self-hosted fuzzing for Python code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(tokens.app, name="token")
app.add_typer(repos.app, name="repo")
repos.app.command("secret")(policies.secret)
repos.app.add_typer(policies.policy_app, name="policy")
app.add_typer(repos.harness_app, name="harness")
app.add_typer(corpus.app, name="corpus")
app.add_typer(campaigns.app, name="campaign")
app.add_typer(crashes.app, name="crash")
app.command("report")(report.report)
app.command("fuzz")(fuzz.fuzz)
app.command("run")(run.run)
app.command("demo")(demo.demo)
app.command("server")(service.server)
app.command("worker")(service.worker)


@app.callback()
def root(ctx: typer.Context) -> None:
    """Self-hosted fuzzing for Python code: atheris and Hypothesis harnesses at fleet scale."""
    if not isinstance(ctx.obj, CliContext):
        ctx.obj = build_context()
    _configure_logging(ctx.obj.settings.log_level)
    ctx.call_on_close(ctx.obj.close)


def _configure_logging(level: str) -> None:
    handler: logging.Handler
    if stderr.is_terminal:
        handler = RichHandler(console=stderr, show_path=False, markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        # A server's or worker's log goes to files and collectors: one line per record,
        # never wrapped at a terminal width, so it can be searched.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Alembic narrates every migration context at INFO; our own log line says what changed.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # dramatiq narrates its workers' start and stop; the progress display says what matters.
    for noisy in ("dramatiq", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def exit_code_for(exc: BaseException) -> int:
    """The CLI exit code for an error, per DESIGN.md's CLI contract."""
    if isinstance(exc, FuzzorchError):
        return exc.exit_code
    if isinstance(exc, ValueError | LookupError | HarnessError):
        # Invalid or unknown refs, sources, keys, names and configurations: the user's
        # input was refused.
        return EXIT_USAGE
    if isinstance(exc, WorkerError):
        return EXIT_INFRA
    return EXIT_INFRA


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of raising."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name="fuzzorch", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except TyperException as exc:
        # typer's own parsing errors (unknown option, missing argument): bad usage.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:  # pragma: no cover - every parsing error has show()
            error(exc.format_message())
        return EXIT_USAGE
    except typer.Abort:
        error("aborted")
        return EXIT_INFRA
    except (FuzzorchError, WorkerError, HarnessError, ValueError, LookupError) as exc:
        error(str(exc))
        return exit_code_for(exc)
    except Exception as exc:
        # A bug of ours or an unexpected outside failure: never exit 1, which means "the
        # gate failed" to a release pipeline.
        logging.getLogger(__name__).exception("unexpected failure")
        error(f"unexpected failure: {exc!r}")
        return EXIT_INFRA
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
