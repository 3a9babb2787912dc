"""`video-serve`: submit, follow, cancel, list and download jobs, and read usage, from a shell.

Exit codes say how it ended: 0 done (the job completed), 1 the job failed, 2 a bad command or a refused
request, 3 the job was cancelled, 4 the server was unreachable or unavailable, 5 the wait timed out.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import Any

import httpx

from video_serve_client._core import VARIANTS, usage_table
from video_serve_client.client import Client, Job
from video_serve_client.errors import APIError, RateLimitError, UnavailableError, WaitTimeout

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED, EXIT_UNAVAILABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
EXIT_BY_STATUS = {"completed": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}


def parser() -> argparse.ArgumentParser:
    """The command line: global options, then one subcommand."""
    cli = argparse.ArgumentParser(prog="video-serve", description="Video jobs on a video-serve API.")
    cli.add_argument("--url", help="API base URL (default: $VIDEO_SERVE_URL)")
    cli.add_argument("--api-key", help="API key (default: $VIDEO_SERVE_API_KEY)")
    cli.add_argument("--json", action="store_true", help="JSON lines on stdout instead of a progress bar")
    common = argparse.ArgumentParser(add_help=False)  # --json after the subcommand too
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands = cli.add_subparsers(dest="command", required=True)
    add = functools.partial(commands.add_parser, parents=[common])
    generate = add("generate", help="submit a job: any request field as --field value")
    generate.add_argument("model")
    generate.add_argument("--out", help="wait, then write the mp4 here")
    generate.add_argument("--no-wait", action="store_true", help="print the job id and return")
    generate.add_argument("--timeout", type=float, help="seconds to wait at most")
    for name in ("status", "cancel"):
        add(name).add_argument("job_id")
    wait = add("wait", help="follow a job until it ends")
    wait.add_argument("job_id")
    wait.add_argument("--out", help="write the mp4 here once completed")
    wait.add_argument("--timeout", type=float, help="seconds to wait at most")
    jobs = add("jobs", help="list your jobs, newest first")
    jobs.add_argument("--status")
    jobs.add_argument("--model")
    jobs.add_argument("--limit", type=int, default=20)
    usage = add("usage", help="your jobs, GPU-seconds and cost per day or model (an admin: any tenant's)")
    usage.add_argument("--start", help="first day, YYYY-MM-DD (UTC; default 30 days ago)")
    usage.add_argument("--end", help="last day, YYYY-MM-DD (UTC; default today)")
    usage.add_argument("--by", choices=("day", "model"), default="day")
    usage.add_argument("--tenant", help="one tenant's usage (admin keys; default: every tenant)")
    download = add("download", help="write a completed job's mp4, or its thumbnail or spritesheet")
    download.add_argument("job_id")
    download.add_argument("path")
    download.add_argument("--variant", choices=VARIANTS, default="video", help="thumbnail: WebP; spritesheet: JPEG")
    return cli


def request_fields(extra: list[str]) -> dict[str, Any]:
    """`--name value` pairs as request fields; values are JSON when they parse (3, true, [0, 10, 0, 0])."""
    fields: dict[str, Any] = {}
    if len(extra) % 2 or not all(flag.startswith("--") for flag in extra[::2]):
        raise SystemExit(f"video-serve: request fields go as --name value pairs, got: {' '.join(extra)}")
    for flag, raw in zip(extra[::2], extra[1::2], strict=True):
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        fields[flag[2:].replace("-", "_")] = raw if isinstance(value, dict) else value
    return fields


def emit(as_json: bool, value: dict[str, Any], text: str) -> None:
    print(json.dumps(value) if as_json else text, flush=True)


def follow(client: Client, job: Job, args: argparse.Namespace) -> int:
    """Wait for the job (events as JSON lines, or a bar on a terminal), download it if asked; the exit code."""
    if args.json:
        for event in job.stream():
            emit(True, event, "")
        job.refresh()
    else:
        job.wait(progress=sys.stderr.isatty(), timeout=args.timeout)
    if job.status == "completed" and args.out:
        job.download(args.out)
    emit(
        args.json,
        job.data,
        f"{job.id} {job.status}" + (f" -> {args.out}" if args.out and job.status == "completed" else ""),
    )
    return EXIT_BY_STATUS.get(job.status, EXIT_FAILED)


def run_command(client: Client, args: argparse.Namespace, extra: list[str]) -> int:
    if args.command == "generate":
        job = client.generate(args.model, **request_fields(extra))
        if args.no_wait:
            emit(args.json, job.data, job.id)
            return EXIT_OK
        if args.json:
            emit(True, job.data, "")
        return follow(client, job, args)
    if extra:
        raise SystemExit(f"video-serve: unrecognised arguments: {' '.join(extra)}")
    if args.command == "status":
        job = client.job(args.job_id)
        emit(args.json, job.data, f"{job.id} {job.status} {job.data['progress']:.0f}% {job.data['stage']}")
    elif args.command == "wait":
        return follow(client, client.job(args.job_id), args)
    elif args.command == "cancel":
        job = client.job(args.job_id).cancel()
        emit(args.json, job.data, f"{job.id} {job.status}")
    elif args.command == "jobs":
        for job in _first(
            client.jobs(status=args.status, model=args.model, page_size=min(args.limit, 100)), args.limit
        ):
            emit(args.json, job.data, f"{job.id}\t{job.status}\t{job.data['created_at']}")
    elif args.command == "usage":
        report = client.usage(args.start, args.end, args.by, args.tenant)
        emit(args.json, report, usage_table(report))
    elif args.command == "download":
        path = client.job(args.job_id).download(args.path, args.variant)
        emit(args.json, {"job_id": args.job_id, "path": str(path)}, str(path))
    return EXIT_OK


def _first(jobs: Any, limit: int) -> list[Job]:
    return [job for _, job in zip(range(limit), jobs, strict=False)]


def main(argv: list[str] | None = None) -> int:
    """Entry point of `video-serve`; returns the exit code."""
    args, extra = parser().parse_known_args(argv)
    try:
        with Client(args.url, args.api_key) as client:
            return run_command(client, args, extra)
    except (RateLimitError, UnavailableError, httpx.TransportError) as exc:
        print(f"video-serve: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except APIError as exc:
        fields = "".join(f"\n  {f['field']}: {f['message']}" for f in exc.fields)
        print(f"video-serve: {exc}{fields}", file=sys.stderr)
        return EXIT_USAGE
    except WaitTimeout as exc:
        print(f"video-serve: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except ValueError as exc:  # no API key
        print(f"video-serve: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
