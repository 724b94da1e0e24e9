"""The command line of `python -m entrypoint`: `run` (the default) and `check`.

Each option overrides the environment variable the image sets, so the image needs no
arguments and a developer needs no environment.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from entrypoint.check import run_check
from entrypoint.migrate import run_migrate
from entrypoint.runner import run
from entrypoint.settings import Settings

# Options of `run`, each overriding the environment variable the image sets.
RUN_OPTIONS = (
    ("--config", "KAPACITOR_CONFIG_JSON", "FILE",
     "config.json to run (default: <home>/config/config.json)"),
    ("--data-dir", "KAPACITOR_DATA_DIR", "DIR",
     "Kapacitor's data directory (required outside the image, which sets /var/lib/kapacitor)"),
    ("--conf-dir", "KAPACITOR_CONF_DIR", "DIR",
     "where kapacitor.conf is written (default: DATA_DIR/conf)"),
    ("--http-bind", "KAPACITOR_HTTP_BIND", "HOST:PORT",
     "kapacitord's HTTP address (default :9092); a taken port stops the start"),
    ("--influxdb-url", "INFLUXDB_URL", "URL", "InfluxDB to read from and write to (default: none)"),
    ("--kapacitord", "KAPACITORD", "FILE",
     "kapacitord binary (default: the build of scripts/install_kapacitor.sh, then PATH)"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m entrypoint",
        description="Run kapacitord with the UDFs and tasks of a config.json, or check one. "
                    "Settings come from environment variables (the image sets them); an "
                    "option overrides its variable.")
    commands = parser.add_subparsers(dest="command", metavar="{run,check,migrate}")
    run_cmd = commands.add_parser("run", help="(the default) render kapacitor.conf, start "
                              "kapacitord, define and supervise the tasks")
    for target in (parser, run_cmd):
        for flag, var, metavar, text in RUN_OPTIONS:
            target.add_argument(flag, metavar=metavar, default=argparse.SUPPRESS,
                                help=f"{text}; env {var}")
        target.add_argument("--dev", action="store_true", default=argparse.SUPPRESS,
                            help="DEV_MODE: redefine tasks when their files change")
    check = commands.add_parser(
        "check", help="validate a config.json and its TICKscripts without side effects; "
        "exit status 2 names the key or task at fault")
    check.add_argument("config", nargs="?", type=Path, help="default: KAPACITOR_CONFIG_JSON "
                       "or <home>/config/config.json")
    check.add_argument("--static", action="store_true",
                       help="only the schema and file checks: no throwaway kapacitord")
    migrate = commands.add_parser(
        "migrate", help="print an EII config.json (task[].task_name, ...) in this format")
    migrate.add_argument("config", type=Path, help="the EII config.json")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment, overridden by the options given."""
    env = dict(os.environ)
    for flag, var, _, _ in RUN_OPTIONS:
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if value is not None:
            env[var] = value
    if getattr(args, "dev", False):
        env["DEV_MODE"] = "true"
    return Settings.from_env(env)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    if args.command == "check":
        return run_check(args.config or settings.config_json, settings, not args.static)
    if args.command == "migrate":
        return run_migrate(args.config, settings.home)
    return run(settings)
