"""``safeadapt-bench agents``: the agent names that resolve, and whether each one imports."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "agents",
        help="list the known agents (built-in, registered and entry points)",
        description="List every agent name with its module:Class target and whether it can be imported. "
        "Any 'module:Class' or 'path/to/file.py:Class' also works where an agent name is expected.",
    )
    p.add_argument("--check", metavar="AGENT", help="resolve one name or path and report its interface")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from safeadapt_bench.agents import known_agents, resolve_agent

    console = Console()
    if args.check:
        cls = resolve_agent(args.check)
        console.print(
            f"{args.check}: {cls.__module__}:{cls.__qualname__} "
            f"required_obs_keys={tuple(getattr(cls, 'required_obs_keys', ()))} "
            f"uses_veto={bool(getattr(cls, 'uses_veto', False))}"
        )
        return 0
    for name, target in sorted(known_agents().items()):
        try:
            resolve_agent(name)
            status = "[green]ok[/green]"
        except ValueError as err:
            status = f"[red]unavailable[/red] ({err})"
        console.print(f"[bold]{name}[/bold] -> {target}: {status}", soft_wrap=True)
    return 0
