"""An admitted request's effect on the state, where there is no cluster to
persist it: the embedded server and the offline commands, each its own cluster
of one."""

from __future__ import annotations

from webhook.decide.admission import AdmissionRequest
from webhook.model import kinds
from webhook.model.reading import UnreadableObjectError, parse_object
from webhook.state.index import StateIndex


def apply_admitted(state: StateIndex, request: AdmissionRequest) -> None:
    """Make an admitted request's effect visible, as the apiserver would persist it.

    Dry runs change nothing. Objects that cannot be read were not admitted, so
    they never reach here; a stray one is ignored rather than half-applied.
    """
    if request.dry_run:
        return
    info = kinds.by_group_kind(request.kind.group, request.kind.kind)
    if info is None or not info.reviewed:
        return
    if request.operation == "DELETE":
        state.remove(info, request.namespace or "", request.name or "")
    elif request.operation in ("CREATE", "UPDATE"):
        try:
            state.put_object(info, parse_object(info, request.object, "request.object"))
        except UnreadableObjectError:
            return
