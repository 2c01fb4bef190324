"""Command line: snapshot-webhook serve | review | check | certs | rules | schemas.

Exit codes of the offline commands: 0 when everything is allowed, 1 when
anything is denied, 2 when input cannot be read (the file and reason printed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO

from webhook.manifests import ManifestError
from webhook.rules import Policy, UnknownRuleError

EXIT_OK, EXIT_DENIED, EXIT_UNREADABLE = 0, 1, 2


def _add_state_and_rules(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="PATH",
        help="objects already in the cluster (file or directory of YAML/JSON; repeatable)",
    )
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE_ID=MODE",
        help="override a rule's mode: deny, warn or off (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapshot-webhook",
        description="Validating admission webhook for the Kubernetes volume-snapshot API.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    review = commands.add_parser(
        "review",
        help="answer AdmissionReview JSON files (or - for stdin)",
        description="Answer AdmissionReview requests, one response per line. Requests are "
        "judged in order, and each admitted non-dry-run request changes the state the next "
        "one is judged against, as in a cluster.",
    )
    _add_state_and_rules(review)
    review.add_argument("files", nargs="+", metavar="FILE")

    check = commands.add_parser(
        "check",
        help="check manifests before they reach a cluster",
        description="Apply each object in order, as CREATE, or as UPDATE of an object of the "
        "same kind, namespace and name already in the state. Admitted objects join the state.",
    )
    _add_state_and_rules(check)
    check.add_argument("manifests", nargs="+", metavar="MANIFEST")

    commands.add_parser("rules", help="print the rule table (Markdown)")

    schemas = commands.add_parser("schemas", help="write the JSON Schemas of the models read")
    schemas.add_argument("--out", default="schemas", metavar="DIR")
    return parser


def main(argv: Sequence[str] | None = None, stdin: IO[bytes] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "rules":
            from webhook.catalog_doc import rule_table

            print(rule_table())
            return EXIT_OK
        if args.command == "schemas":
            from webhook.schemas import write_schemas

            for path in write_schemas(args.out):
                print(path)
            return EXIT_OK
        policy = Policy.parse(args.rule)
        if args.command == "review":
            from webhook.offline import run_review

            return run_review(args.files, args.state, policy, stdin, sys.stdout)
        from webhook.offline import run_check

        return run_check(args.manifests, args.state, policy, stdin, sys.stdout)
    except (UnknownRuleError, ManifestError) as err:
        print(f"snapshot-webhook {args.command}: {err}", file=sys.stderr)
        return EXIT_UNREADABLE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
