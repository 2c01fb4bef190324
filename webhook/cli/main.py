"""Command line: snapshot-webhook serve | review | check | audit | certs | rules | schemas.

Exit codes: 0 when everything is allowed (or found nothing), 1 when anything is
denied (or found), 2 when input or configuration cannot be read (a usage error
too; the reason is printed), 3 when `serve` cannot listen (the port is in
use), and 141 when whoever reads the output stops reading (`... | head`),
as for a command ended by SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import select
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pydantic import ValidationError

from webhook import __version__
from webhook.cli.offline import EXIT_OK, EXIT_UNREADABLE
from webhook.cluster.api import KubeConfigError
from webhook.decide.authorize import DEFAULT_GROUPS, AllowList, Requester
from webhook.model.manifests import ManifestError
from webhook.rules import Policy, UnknownRuleError
from webhook.settings import DEFAULT_MAX_BODY_BYTES, Settings
from webhook.tls.certs import CertificateError

if TYPE_CHECKING:  # what `add_subparsers` returns: each `_add_*_command` adds to it
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


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


def _add_authorized(parser: argparse.ArgumentParser, dest_prefix: str = "") -> None:
    """Who may set the allow-volume-mode-change annotation where no cluster is asked."""
    parser.add_argument(
        "--authorized-user",
        action="append",
        dest=f"{dest_prefix}authorized_users",
        metavar="USER",
        help="may set allow-volume-mode-change without a cluster to ask (repeatable)",
    )
    parser.add_argument(
        "--authorized-group",
        action="append",
        dest=f"{dest_prefix}authorized_groups",
        metavar="GROUP",
        help="as --authorized-user, for a group (repeatable; default system:masters)",
    )


def _add_kube(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kube",
        action="store_true",
        default=None,
        help="follow a cluster's objects with list+watch (in-cluster config, or --kubeconfig)",
    )
    parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file; implies --kube")


def _add_review_command(commands: Commands) -> None:
    """`snapshot-webhook review`: its flags."""
    review = commands.add_parser(
        "review",
        help="answer AdmissionReview JSON files (or - for stdin)",
        description="Answer AdmissionReview requests, one response per line. Requests are "
        "judged in order, and each admitted non-dry-run request changes the state the next "
        "one is judged against, as in a cluster.",
    )
    _add_state_and_rules(review)
    _add_authorized(review)
    review.add_argument("files", nargs="+", metavar="FILE")


def _add_check_command(commands: Commands) -> None:
    """`snapshot-webhook check`: its flags."""
    check = commands.add_parser(
        "check",
        help="check manifests before they reach a cluster",
        description="Apply each object in order, as CREATE, or as UPDATE of an object of the "
        "same kind, namespace and name already in the state. Admitted objects join the state.",
    )
    _add_state_and_rules(check)
    _add_authorized(check)
    check.add_argument(
        "--as", dest="as_user", default="", metavar="USER", help="who applies the manifests"
    )
    check.add_argument(
        "--as-group",
        dest="as_groups",
        action="append",
        default=[],
        metavar="GROUP",
        help="a group of --as (repeatable)",
    )
    check.add_argument("manifests", nargs="+", metavar="MANIFEST")


def _add_serve_command(commands: Commands) -> None:
    """`snapshot-webhook serve`: its flags."""
    serve = commands.add_parser(
        "serve",
        help="run the HTTPS admission server",
        description="Run the HTTPS admission server. With no flags: 127.0.0.1:8443, in-memory "
        "state, and a self-signed CA and serving certificate generated into certs/. Every flag "
        "can also be set as SNAPSHOT_WEBHOOK_<NAME> (list values as JSON).",
    )
    _serve_listening(serve)
    _serve_cluster_and_limits(serve)
    _serve_claims(serve)
    _serve_reports(serve)
    _serve_certificates(serve)
    _serve_registration(serve)


def _serve_listening(serve: argparse.ArgumentParser) -> None:
    """Where and how it listens, its state and rules, its logs and its stop."""
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8443)")
    serve.add_argument("--tls-cert-file", help="serving certificate (PEM); reloaded on change")
    serve.add_argument("--tls-private-key-file", help="its private key (PEM)")
    serve.add_argument("--cert-dir", help="where to generate a CA and certificate (default certs)")
    serve.add_argument(
        "--dns-name",
        action="append",
        dest="dns_names",
        metavar="NAME",
        help="extra name for the generated certificate (repeatable)",
    )
    serve.add_argument("--client-ca-file", help="require client certificates signed by this CA")
    serve.add_argument(
        "--state",
        action="append",
        metavar="PATH",
        help="objects to seed the in-memory state with (repeatable)",
    )
    serve.add_argument(
        "--rule",
        action="append",
        dest="rules",
        metavar="RULE_ID=MODE",
        help="override a rule's mode: deny, warn or off (repeatable)",
    )
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="(default info)"
    )
    serve.add_argument(
        "-v",
        "--v",
        type=int,
        dest="verbosity",
        metavar="N",
        help="klog-style verbosity, accepted for upstream manifests: 4+ is debug",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        help=f"largest review body accepted (default {DEFAULT_MAX_BODY_BYTES})",
    )
    serve.add_argument(
        "--shutdown-delay-seconds",
        type=float,
        help="after SIGTERM, report not ready this long before stopping (default 5 with "
        "--kube, else 0)",
    )
    serve.add_argument(
        "--shutdown-timeout-seconds",
        type=float,
        help="then wait at most this long for requests in flight (default 3; the apiserver "
        "gives up on a webhook call after its timeoutSeconds anyway)",
    )


def _serve_cluster_and_limits(serve: argparse.ArgumentParser) -> None:
    """Following a cluster, and the bounds on watches and clients."""
    _add_kube(serve)
    _add_authorized(serve)
    for flag, meaning in (
        (
            "watch-timeout",
            "the apiserver ends each watch after 1-2 times this, and it is resumed (default 300)",
        ),
        (
            "watch-read-timeout",
            "a list slower than this, or a watch silent this long past its end, is retried "
            "(default 30)",
        ),
        ("watch-failure-grace", "/readyz turns false when watches fail this long (default 60)"),
        ("discovery-interval", "how often to look for a missing CRD or permission (default 30)"),
        ("reservation-ttl", "how long an admitted claim is held for the watch (default 30)"),
        ("live-get-timeout", "timeout of the live GET for an object not yet watched (default 1)"),
        ("audit-interval", "how often the cluster is audited in --kube mode (default 300)"),
        ("header-timeout", "close a connection whose request headers take longer (default 10)"),
        ("body-timeout", "answer 408 to a body that takes longer to arrive (default 10)"),
    ):
        serve.add_argument(f"--{flag}-seconds", type=float, metavar="SECONDS", help=meaning)
    serve.add_argument(
        "--keep-alive-seconds",
        type=int,
        metavar="SECONDS",
        help="close keep-alive connections idle this long (default 30)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="connections and requests at once; more get 503 (default 1000)",
    )
    serve.add_argument(
        "--probe-port",
        type=int,
        metavar="PORT",
        help="plain-HTTP port for /healthz, /readyz and /metrics, on --host; 0 for none "
        "(default 8081)",
    )
    serve.add_argument(
        "--max-inflight-bytes",
        type=int,
        metavar="BYTES",
        help="request body bytes held at once; more get 503 (default 64 MiB)",
    )


def _serve_claims(serve: argparse.ArgumentParser) -> None:
    """Claims on unique slots."""
    claims = serve.add_argument_group(
        "claims on unique slots (with --kube)",
        "Before admitting a write that takes a default class or a one-to-one binding, claim "
        "it with a Lease in --namespace, so that exactly one replica admits it.",
    )
    claims.add_argument(
        "--claims",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="claim unique slots through the apiserver (default on)",
    )
    claims.add_argument(
        "--claim-duration-seconds",
        type=float,
        metavar="SECONDS",
        help="how long a claim lives unless the watch shows its holder first (default 30)",
    )
    claims.add_argument(
        "--claim-timeout-seconds",
        type=float,
        metavar="SECONDS",
        help="timeout of each claim request to the apiserver (default 2)",
    )
    claims.add_argument(
        "--claim-failure",
        choices=["deny", "warn"],
        help="when a claim cannot be made: deny and ask to retry (default), or admit with a "
        "warning",
    )


def _serve_reports(serve: argparse.ArgumentParser) -> None:
    """Policy reports kept current."""
    reports = serve.add_argument_group(
        "policy reports (with --kube)",
        "One replica, the leader of the Lease snapshot-webhook-reports in --namespace, keeps "
        "the audit's findings published as policy reports, re-judged when objects change.",
    )
    reports.add_argument(
        "--reports",
        choices=["auto", "wgpolicy", "openreports", "off"],
        help="which report CRD to write: auto takes openreports.io when installed, else "
        "wgpolicyk8s.io, else writes nothing (default auto)",
    )
    reports.add_argument(
        "--reports-lease-seconds",
        type=float,
        metavar="SECONDS",
        help="the leader Lease's duration: how long a stopped leader's reports wait for the "
        "next (default 15)",
    )
    reports.add_argument(
        "--reports-debounce-seconds",
        type=float,
        metavar="SECONDS",
        help="publish once the state has been quiet this long (at most 5x this after a "
        "change) (default 2)",
    )


def _serve_certificates(serve: argparse.ArgumentParser) -> None:
    """Self-managed certificates."""
    managed = serve.add_argument_group(
        "self-managed certificates (with --kube)",
        "Keep a CA and serving certificate in a Secret shared by every replica, serve it, "
        "and write the CA into every entry of the named webhook configurations.",
    )
    managed.add_argument(
        "--manage-certificates", action="store_true", default=None, help="turn this on"
    )
    managed.add_argument(
        "--namespace",
        metavar="NS",
        help="where the Secret (and the claims) live (default: POD_NAMESPACE, else the pod's "
        "service-account namespace, else the kubeconfig context's, else default)",
    )
    managed.add_argument(
        "--service",
        metavar="NAME",
        help="the Service the apiserver calls; the certificate names NAME, NAME.NS, NAME.NS.svc "
        "and NAME.NS.svc.cluster.local (default snapshot-webhook)",
    )
    managed.add_argument(
        "--tls-san",
        action="append",
        dest="tls_sans",
        metavar="NAME",
        help="extra DNS name or IP address in the certificate (repeatable)",
    )
    managed.add_argument(
        "--certificate-secret",
        metavar="NAME",
        help="the Secret holding the CA and serving pair (default snapshot-webhook-tls)",
    )
    managed.add_argument(
        "--webhook-configuration",
        action="append",
        dest="webhook_configurations",
        metavar="NAME",
        help="ValidatingWebhookConfiguration whose caBundle is kept (repeatable; default "
        "snapshot-webhook)",
    )
    for flag, meaning in (
        ("certificate-sync", "how often the Secret and caBundles are checked (default 10)"),
        (
            "certificate-start-timeout",
            "how long to try for the first pair before giving up (default 60)",
        ),
        ("ca-lifetime", "validity of a new CA (default 3 years)"),
        ("certificate-lifetime", "validity of a new serving certificate (default 90 days)"),
        ("ca-overlap", "how long a new CA is trusted before it signs (default 3600)"),
    ):
        managed.add_argument(f"--{flag}-seconds", type=float, metavar="SECONDS", help=meaning)


def _serve_registration(serve: argparse.ArgumentParser) -> None:
    """Registering the webhook configuration."""
    registration = serve.add_argument_group(
        "registering the webhook (with --kube)",
        "Once this replica is ready, create the ValidatingWebhookConfiguration (named by "
        "--webhook-configuration) with the CA it serves with, owned by --webhook-owner so "
        "that it is deleted with the install, and keep it so. Nothing is registered, so "
        "nothing is blocked, until a replica can answer.",
    )
    registration.add_argument(
        "--register-webhook", action="store_true", default=None, help="turn this on"
    )
    registration.add_argument(
        "--ca-bundle-file",
        metavar="PATH",
        help="the CA to register (PEM), re-read every --certificate-sync-seconds; with "
        "--manage-certificates, the managed CA is registered instead",
    )
    registration.add_argument(
        "--webhook-owner",
        metavar="CLUSTERROLE",
        help="the ClusterRole the configuration is owned by (default snapshot-webhook)",
    )
    registration.add_argument(
        "--failure-policy",
        choices=["Fail", "Ignore"],
        help="failurePolicy of the CREATE and UPDATE entries; the delete-warning entries are "
        "always Ignore (default Fail)",
    )


def _add_audit_command(commands: Commands) -> None:
    """`snapshot-webhook audit`: its flags."""
    audit = commands.add_parser(
        "audit",
        help="report what the rules forbid but the cluster already has",
        description="Run the cross-object rules over every object in the state (from --state "
        "files, or from the cluster with --kube) and report what they find. Exit 1 when a "
        "rule in deny mode finds something (--fail-on warn: when anything is found), 2 when "
        "the state cannot be read.",
    )
    _add_state_and_rules(audit)
    _add_kube(audit)
    audit.add_argument(
        "-o",
        "--output",
        choices=["text", "json", "policyreport", "openreports"],
        default="text",
        help="text, json, or the reports a cluster would hold as YAML: policyreport "
        "(wgpolicyk8s.io/v1alpha2) or openreports (openreports.io/v1alpha1) (default text)",
    )
    audit.add_argument(
        "--crds",
        metavar="DIR",
        help="upgrade pre-flight: judge every stored object by these CRDs (a file or directory "
        "of the release about to be installed): schema, x-kubernetes-validations rules and "
        "versions; exit 1 when they would refuse something (needs the preflight extra)",
    )
    audit.add_argument(
        "--fail-on",
        choices=["deny", "warn"],
        default="deny",
        help="exit 1 when a finding of a rule in deny mode is found (deny, the default), or "
        "when anything is found, warnings too (warn)",
    )
    audit.add_argument(
        "--sync-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --kube: how long to wait for the first list of every kind",
    )


def _add_certs_command(commands: Commands) -> None:
    """`snapshot-webhook certs`: its flags."""
    certs = commands.add_parser(
        "certs",
        help="make a CA and a serving certificate for a Service",
        description="Write ca.crt, ca.key, tls.crt and tls.key for Service NAME in namespace NS "
        "and print the base64 caBundle. An existing CA is kept unless --force.",
    )
    certs.add_argument("--service", required=True, metavar="NAME")
    certs.add_argument("--namespace", required=True, metavar="NS")
    certs.add_argument(
        "--out",
        default="certs/service",
        metavar="DIR",
        help="where to write them (default certs/service; serve keeps its local pair in certs)",
    )
    certs.add_argument(
        "--days", type=int, default=365, help="validity of the serving certificate (default 365)"
    )
    certs.add_argument("--force", action="store_true", help="make a new CA as well")
    certs.add_argument(
        "--client-name",
        metavar="NAME",
        help="also write client-ca.crt and a client-tls.crt/.key for NAME, for the apiserver "
        "to present when serve runs with --client-ca-file client-ca.crt",
    )


def _add_policies_command(commands: Commands) -> None:
    """`snapshot-webhook policies`: its flags."""
    policies = commands.add_parser(
        "policies",
        help="print the ValidatingAdmissionPolicies that back the webhook up",
        description="Print, as YAML, a ValidatingAdmissionPolicy and its binding for every "
        "one-object and transition rule that CEL can express and the CRDs do not enforce, so "
        "that the apiserver keeps them while the webhook is down. A rule in warn mode is bound "
        "with validationActions [Warn]; a rule turned off is left out. deploy/ ships the "
        "output with the default modes. Needs Kubernetes v1.30 or newer.",
    )
    policies.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE_ID=MODE",
        help="override a rule's mode: deny, warn or off (repeatable)",
    )


def _add_webhook_configuration_command(commands: Commands) -> None:
    """`snapshot-webhook webhook-configuration`: its flags."""
    configuration = commands.add_parser(
        "webhook-configuration",
        help="print the ValidatingWebhookConfiguration",
        description="Print, as YAML, the ValidatingWebhookConfiguration that `serve "
        "--register-webhook` registers, for installs that declare every object (GitOps). "
        "Without --ca-bundle-file it has no caBundle: --manage-certificates writes it, or set "
        "it yourself.",
    )
    configuration.add_argument("--service", default="snapshot-webhook", metavar="NAME")
    configuration.add_argument("--namespace", default="snapshot-webhook", metavar="NS")
    configuration.add_argument("--name", default="snapshot-webhook", metavar="NAME")
    configuration.add_argument("--failure-policy", choices=["Fail", "Ignore"], default="Fail")
    configuration.add_argument(
        "--ca-bundle-file", metavar="PATH", help="the CA (PEM) to write into every caBundle"
    )
    configuration.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE_ID=MODE",
        help="as for serve: a kind whose deletion rules are all off gets no DELETE entry",
    )


def _add_rules_command(commands: Commands) -> None:
    """`snapshot-webhook rules`: its flags."""
    commands.add_parser(
        "rules",
        help="print the rule table (Markdown)",
        description="Print every rule: its id, the kind and operations it judges, its default "
        "mode and what it requires, as the Markdown table the README shows.",
    )


def _add_schemas_command(commands: Commands) -> None:
    """`snapshot-webhook schemas`: its flags."""
    schemas = commands.add_parser(
        "schemas",
        help="write the JSON Schemas of the models read",
        description="Write a JSON Schema for every object and AdmissionReview shape the "
        "webhook reads, generated from its models, and print each path written.",
    )
    schemas.add_argument(
        "--out", default="schemas", metavar="DIR", help="where to write them (default schemas)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapshot-webhook",
        description="Validating admission webhook for the Kubernetes volume-snapshot API.",
    )
    parser.add_argument("--version", action="version", version=f"snapshot-webhook {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_review_command(commands)
    _add_check_command(commands)
    _add_serve_command(commands)
    _add_audit_command(commands)
    _add_certs_command(commands)
    _add_policies_command(commands)
    _add_webhook_configuration_command(commands)
    _add_rules_command(commands)
    _add_schemas_command(commands)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, with a usage error in the words of the command it concerns."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    command = _subparser(parser, args.command)
    if extra:
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "audit" and not (args.state or args.kube or args.kubeconfig):
        command.error("say what to audit: --state PATH, --kube or --kubeconfig PATH")
    return args


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    return parser


def main(argv: Sequence[str] | None = None, stdin: IO[bytes] | None = None) -> int:
    args = parse(argv)
    try:
        status = _run(args, stdin)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        if _reader_gone():
            raise BrokenPipeError
        return status
    except BrokenPipeError:
        # whoever read the output stopped (`| head`): leave quietly, as a command
        # ended by SIGPIPE does, and keep Python from complaining at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it. Output that fit in the
    pipe's buffer never met the closed end, so a write alone would not tell; the
    pipe says so (POLLERR), and the command ends as one ended by SIGPIPE would,
    whatever the timing."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLERR)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real stdout (a test's StringIO)
        return False


def _run(args: argparse.Namespace, stdin: IO[bytes] | None) -> int:
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "certs":
            return _certs(args)
        if args.command == "audit" and args.crds:
            from webhook.cli.preflight import run_preflight

            return run_preflight(args, sys.stdout)
        if args.command == "audit":
            from webhook.cli.offline import run_audit

            return run_audit(args, Policy.parse(args.rule), sys.stdout)
        if args.command == "policies":
            from webhook.render.policies import render

            print(policies_yaml(list(render(Policy.parse(args.rule)))), end="")
            return EXIT_OK
        if args.command == "webhook-configuration":
            print(configuration_yaml(args), end="")
            return EXIT_OK
        if args.command == "rules":
            from webhook.render.catalog import rule_table

            print(rule_table())
            return EXIT_OK
        if args.command == "schemas":
            from webhook.render.schemas import write_schemas

            for path in write_schemas(args.out):
                print(path)
            return EXIT_OK
        policy = Policy.parse(args.rule)
        if args.command == "review":
            from webhook.cli.offline import run_review

            return run_review(args.files, args.state, policy, stdin, sys.stdout, allow_list(args))
        from webhook.cli.offline import run_check

        requester = Requester(args.as_user, groups=tuple(args.as_groups))
        return run_check(
            args.manifests, args.state, policy, stdin, sys.stdout, allow_list(args), requester
        )
    except (UnknownRuleError, ManifestError, CertificateError, KubeConfigError) as err:
        print(f"snapshot-webhook {args.command}: {err}", file=sys.stderr)
        return EXIT_UNREADABLE
    except BrokenPipeError:
        raise
    except OSError as err:
        print(f"snapshot-webhook {args.command}: {err}", file=sys.stderr)
        return EXIT_UNREADABLE


POLICIES_HEADER = (
    "# ValidatingAdmissionPolicies that keep the one-object rules while the webhook is down.\n"
    "# Rendered by `snapshot-webhook policies`; edit the rule catalogue, not this file.\n"
)


def policies_yaml(docs: list[dict[str, object]]) -> str:
    import yaml

    body = yaml.safe_dump_all(docs, sort_keys=False, width=100)
    return POLICIES_HEADER + body


CONFIGURATION_HEADER = (
    "# The ValidatingWebhookConfiguration, declared. Rendered by `snapshot-webhook\n"
    "# webhook-configuration`, the same code `serve --register-webhook` registers with;\n"
    "# edit the code, not this file.\n"
)


def configuration_yaml(args: argparse.Namespace) -> str:
    import base64

    import yaml

    from webhook.render.configuration import configuration, warned_kinds

    bundle = None
    if args.ca_bundle_file:
        bundle = base64.b64encode(Path(args.ca_bundle_file).read_bytes()).decode()
    rendered = configuration(
        args.service,
        args.namespace,
        name=args.name,
        failure_policy=args.failure_policy,
        ca_bundle=bundle,
        warned_deletes=warned_kinds(Policy.parse(args.rule)),
    )
    return CONFIGURATION_HEADER + yaml.safe_dump(rendered, sort_keys=False, width=100)


def allow_list(args: argparse.Namespace) -> AllowList:
    return AllowList(
        tuple(args.authorized_users or ()), tuple(args.authorized_groups or DEFAULT_GROUPS)
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """Flags given on the command line, over SNAPSHOT_WEBHOOK_* variables, over defaults."""
    given = {
        name: getattr(args, name)
        for name in Settings.model_fields
        if getattr(args, name, None) is not None
    }
    if args.verbosity is not None and "log_level" not in given:
        given["log_level"] = "debug" if args.verbosity >= 4 else "info"
    try:
        return Settings(**given)
    except ValidationError as err:
        problems = []
        for item in err.errors(include_url=False):
            name = str(item["loc"][0]) if item["loc"] else ""
            where = f"--{name.replace('_', '-')} (SNAPSHOT_WEBHOOK_{name.upper()})" if name else ""
            # pydantic prefixes the validators' own words with "Value error, "
            problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}".lstrip(": "))
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


class ConfigurationError(ValueError):
    pass


def _serve(args: argparse.Namespace) -> int:
    from webhook.serving.server import serve
    from webhook.tls.sync import CertificateSyncError
    from webhook.tls.watch import TLSFileError

    try:
        settings = settings_from(args)
        Policy.parse(settings.rules)
        return serve(settings)
    except (
        ConfigurationError,
        UnknownRuleError,
        TLSFileError,
        CertificateError,
        CertificateSyncError,
        KubeConfigError,
        ManifestError,
    ) as err:
        print(f"snapshot-webhook serve: {err}", file=sys.stderr)
        return EXIT_UNREADABLE


def _certs(args: argparse.Namespace) -> int:
    from webhook.tls import certs

    names = certs.service_names(args.service, args.namespace)
    paths = certs.ensure(Path(args.out), names, days=args.days, force=args.force, reissue=True)
    written = [paths.ca_cert, paths.ca_key, paths.cert, paths.key]
    if args.client_name:
        client = certs.ensure(
            Path(args.out),
            [args.client_name],
            days=args.days,
            force=args.force,
            reissue=True,
            client=True,
        )
        written += [client.ca_cert, client.ca_key, client.cert, client.key]
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    print(certs.ca_bundle(paths))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
