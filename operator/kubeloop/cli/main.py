"""Argument parsing and dispatch; each command is a small module of its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kubernetes.client.rest import ApiException

from kubeloop.cli import report, rollout


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="kubeloop", description="Kubeloop: inspect and steer the ML loop.")
    root.add_argument("-n", "--namespace", default=None, help="namespace (default: the kubeconfig's)")
    commands = root.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="a readable summary of a ModelDeployment's rollout")
    status.add_argument("deployment")
    latest = commands.add_parser("report", help="the latest ModelMonitor verdict and where its report is")
    latest.add_argument("monitor")
    for verb, text in rollout.ACTIONS.items():
        action = commands.add_parser(verb, help=text)
        action.add_argument("deployment")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    namespace = args.namespace or rollout.default_namespace()
    try:
        if args.command == "report":
            print(report.report(namespace, args.monitor))
        elif args.command == "status":
            print(rollout.status_text(rollout.read(namespace, args.deployment)))
        else:
            print(rollout.act(namespace, args.deployment, args.command))
    except rollout.CommandError as error:
        print(f"kubeloop: {error}", file=sys.stderr)
        return 1
    except ApiException as error:
        print(f"kubeloop: the API server said {error.status} {error.reason}", file=sys.stderr)
        return 1
    return 0
