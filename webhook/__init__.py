"""snapshot-webhook: a validating admission webhook for the Kubernetes volume-snapshot API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("snapshot-webhook")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
