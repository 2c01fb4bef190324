"""Upgrade pre-flight: what the CRDs about to be installed would refuse of the
objects stored now, and which stored versions they would strand.

Each stored object is judged as its next write would be judged by the new
CRDs (a write that changes nothing, such as removing a finalizer):

- the version's OpenAPI schema, with the apiserver's semantics: null is pruned
  where a field is not nullable, `x-kubernetes-int-or-string`, enums, formats
  (date-time, int32, int64, byte, uuid), patterns and bounds; a field the
  schema does not know is pruned (silently dropped on that write), which is
  reported apart;
- every `x-kubernetes-validations` rule at its place in the object, with a real
  CEL implementation (cel-python) and Kubernetes' escaping of property names
  (`self.__namespace__`); transition rules see `oldSelf` equal to `self`. A rule
  that uses a function this evaluator does not have is named as unevaluable,
  never passed.

Findings are ids in the same style as the rules': `crd.schema`, `crd.rule`,
`crd.schema.pruned`, `crd.rule.unevaluable`, `crd.version.unserved`,
`crd.version.storage-moved`.

Pure: CRDs and objects in, findings out. Needs the `preflight` extra.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import itertools
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from webhook.model.values import fit

Obj = dict[str, Any]
MAX_MESSAGE = 400

# Kubernetes escapes property names that CEL cannot name (KEP-2876).
CEL_RESERVED = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)


class CRDError(ValueError):
    """A CustomResourceDefinition that cannot be read, naming the field."""


@dataclass(frozen=True)
class CRDVersion:
    name: str
    served: bool
    storage: bool
    schema: Obj | None


@dataclass(frozen=True)
class CRD:
    name: str
    group: str
    kind: str
    plural: str
    namespaced: bool
    versions: tuple[CRDVersion, ...]

    def version(self, name: str) -> CRDVersion | None:
        return next((v for v in self.versions if v.name == name), None)

    @property
    def served(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.versions if v.served)

    @property
    def storage(self) -> str | None:
        return next((v.name for v in self.versions if v.storage), None)


def read_crd(doc: Obj, where: str) -> CRD:
    """A CRD from its manifest; CRDError names the field that is wrong."""

    def need(value: object, path: str, kind: type) -> Any:
        if not isinstance(value, kind):
            raise CRDError(f"{where}: {path} must be a {kind.__name__}, got {value!r:.80}")
        return value

    spec = need(doc.get("spec"), "spec", dict)
    names = need(spec.get("names"), "spec.names", dict)
    versions = []
    for i, raw in enumerate(need(spec.get("versions"), "spec.versions", list)):
        need(raw, f"spec.versions[{i}]", dict)
        schema = (raw.get("schema") or {}).get("openAPIV3Schema")
        versions.append(
            CRDVersion(
                need(raw.get("name"), f"spec.versions[{i}].name", str),
                bool(raw.get("served")),
                bool(raw.get("storage")),
                schema if isinstance(schema, dict) else None,
            )
        )
    return CRD(
        str((doc.get("metadata") or {}).get("name") or ""),
        need(spec.get("group"), "spec.group", str),
        need(names.get("kind"), "spec.names.kind", str),
        need(names.get("plural"), "spec.names.plural", str),
        spec.get("scope") == "Namespaced",
        tuple(versions),
    )


@dataclass(frozen=True)
class PreflightFinding:
    kind: str
    name: str  # namespace/name, or name
    check: str
    path: str
    message: str
    refuses: bool  # the new CRDs would refuse the object's next write (or cannot serve it)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "object": self.name,
            "check": self.check,
            "path": self.path,
            "message": self.message,
            "refuses": self.refuses,
        }

    def __str__(self) -> str:
        return f"{self.kind} {self.name} {self.check}: {self.message}"


def display(obj: Obj) -> str:
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name, namespace = str(metadata.get("name") or ""), metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else name


# --- the OpenAPI schema -------------------------------------------------------------

_COPIED = (
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
)


def json_schema(schema: Obj) -> Obj:
    """An OpenAPI v3 structural schema as the JSON Schema (draft 4) that checks
    what the apiserver checks."""
    out: Obj = {key: schema[key] for key in _COPIED if key in schema}
    nullable = bool(schema.get("nullable"))
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string", "null"] if nullable else ["integer", "string"]
    elif "type" in schema:
        out["type"] = [schema["type"], "null"] if nullable else schema["type"]
    if nullable and "enum" in out:
        out["enum"] = [*out["enum"], None]
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: json_schema(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = json_schema(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        out["items"] = json_schema(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            out[key] = [json_schema(s) for s in schema[key]]
    if isinstance(schema.get("not"), dict):
        out["not"] = json_schema(schema["not"])
    return out


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value or "t" in value


def _integer_range(bits: int) -> Any:
    def check(value: object) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return True
        return bool(-(2 ** (bits - 1)) <= value < 2 ** (bits - 1))

    return check


def _byte(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(_date_time)
FORMATS.checks("int32")(_integer_range(32))
FORMATS.checks("int64")(_integer_range(64))
FORMATS.checks("byte")(_byte)
FORMATS.checks("uuid")(_uuid)


def children(value: Any, schema: Obj, path: str) -> Iterator[tuple[str, Any, Obj | None]]:
    """(path, value, schema) of each field or item of `value`, by the schema over
    it: a field `properties` names gets its schema, another field of a map the
    `additionalProperties` schema, an item of a list the `items` schema. A field
    no schema governs gets None: the apiserver keeps it only where
    `additionalProperties` is true."""
    properties, extra = schema.get("properties"), schema.get("additionalProperties")
    if isinstance(value, dict) and isinstance(properties, dict):
        for key, item in value.items():
            sub = properties.get(key)
            if key in properties:
                sub = sub if isinstance(sub, dict) else {}
            yield (f"{path}.{key}" if path else key), item, sub
    elif isinstance(value, dict) and isinstance(extra, dict):
        for key, item in value.items():
            yield f"{path}[{key}]", item, extra
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield f"{path}[{i}]", item, schema["items"]


def pruned(
    value: Any, schema: Obj | None, path: str, top: bool = False
) -> Iterator[tuple[str, Any]]:
    """(path, value) of every field the apiserver would drop: nulls where not
    nullable are dropped silently (no finding), unknown fields are reported."""
    if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    for where, item, sub in children(value, schema, path):
        if top and where in ("apiVersion", "kind", "metadata"):
            continue
        if sub is not None:
            yield from pruned(item, sub, where)
        elif not schema.get("additionalProperties"):
            yield where, item


def without_nulls(value: Any, schema: Obj | None) -> Any:
    """The value as the apiserver validates it: a null where the schema does not
    say nullable is pruned, at every depth."""
    if schema is None:
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = properties.get(key) or (extra if isinstance(extra, dict) else None)
            if item is None and not (sub or {}).get("nullable"):
                continue
            out[key] = without_nulls(item, sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [without_nulls(item, schema["items"]) for item in value]
    return value


def _json_path(parts: Iterable[object]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def schema_findings(obj: Obj, schema: Obj, kind: str) -> Iterator[PreflightFinding]:
    name = display(obj)
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    checked_schema = {**schema, "properties": dict(schema.get("properties") or {})}
    for key in ("apiVersion", "kind", "metadata"):
        checked_schema["properties"].pop(key, None)
    checked_schema["required"] = [
        r for r in schema.get("required") or [] if r not in ("apiVersion", "kind", "metadata")
    ]
    validator = jsonschema.Draft4Validator(json_schema(checked_schema), format_checker=FORMATS)
    try:
        errors = sorted(validator.iter_errors(without_nulls(body, schema)), key=str)
    except Exception as err:  # a schema this validator cannot apply (a Go-only pattern)
        said = f"the schema cannot be checked here ({type(err).__name__}: {err}): check by hand"
        yield PreflightFinding(
            kind, name, "crd.schema.unevaluable", "", fit(said, MAX_MESSAGE), False
        )
        errors = []
    for error in errors:
        path = _json_path(error.absolute_path) or "(the object)"
        yield PreflightFinding(
            kind, name, "crd.schema", path, fit(f"{path}: {error.message}", MAX_MESSAGE), True
        )
    for path, value in pruned(obj, schema, "", top=True):
        yield PreflightFinding(
            kind,
            name,
            "crd.schema.pruned",
            path,
            fit(
                f"{path}: the new schema does not know this field, so the apiserver drops it "
                f"on the next write (its value {value!r} is lost)",
                MAX_MESSAGE,
            ),
            False,
        )


# --- x-kubernetes-validations ---------------------------------------------------------


def escape(name: str) -> str:
    """A property name as CEL expressions in CRDs spell it (Kubernetes' escaping)."""
    if name in CEL_RESERVED:
        return f"__{name}__"
    escaped = name.replace("__", "__underscores__")
    for char, word in ((".", "dot"), ("-", "dash"), ("/", "slash")):
        escaped = escaped.replace(char, f"__{word}__")
    return escaped


def cel_value(value: Any, schema: Obj | None) -> Any:
    """A JSON value for CEL: the properties of an object schema escaped, map keys not."""
    if isinstance(value, dict):
        properties = (schema or {}).get("properties")
        if isinstance(properties, dict):
            return json_to_cel({escape(k): _plain(v, properties.get(k)) for k, v in value.items()})
        extra = (schema or {}).get("additionalProperties")
        sub = extra if isinstance(extra, dict) else None
        return json_to_cel({k: _plain(v, sub) for k, v in value.items()})
    return json_to_cel(_plain(value, schema))


def _plain(value: Any, schema: Obj | None) -> Any:
    if isinstance(value, dict):
        properties = (schema or {}).get("properties")
        if isinstance(properties, dict):
            return {escape(k): _plain(v, properties.get(k)) for k, v in value.items()}
        extra = (schema or {}).get("additionalProperties")
        return {k: _plain(v, extra if isinstance(extra, dict) else None) for k, v in value.items()}
    if isinstance(value, list):
        items = (schema or {}).get("items")
        return [_plain(v, items if isinstance(items, dict) else None) for v in value]
    return value


def _lower_ascii(text: Any) -> Any:
    return celpy.celtypes.StringType(str(text).lower())


def _upper_ascii(text: Any) -> Any:
    return celpy.celtypes.StringType(str(text).upper())


def _is_sorted(items: Any) -> Any:
    values = list(items)
    return celpy.celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(values)))


# Kubernetes' CEL libraries, as far as this evaluator has them (the snapshot
# CRDs use none beyond the standard functions); any other is named unevaluable.
K8S_FUNCTIONS = {"lowerAscii": _lower_ascii, "upperAscii": _upper_ascii, "isSorted": _is_sorted}
_ENVIRONMENT = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}
_UNDECLARED = re.compile(r"undeclared reference to '([^']+)'")


class Unevaluable(Exception):
    pass


def _program(rule: str) -> Any:
    found = _PROGRAMS.get(rule)
    if found is None:
        try:
            found = _ENVIRONMENT.program(_ENVIRONMENT.compile(rule), functions=K8S_FUNCTIONS)
        except Exception as err:  # a parse error, or syntax this evaluator lacks
            raise Unevaluable(f"cannot be compiled here ({type(err).__name__})") from None
        _PROGRAMS[rule] = found
    return found


def evaluate(rule: str, value: Any, schema: Obj | None) -> tuple[bool, str]:
    """(holds, why not) for one rule at one place; Unevaluable when this evaluator
    cannot tell."""
    program = _program(rule)
    here = cel_value(value, schema)
    try:
        result = program.evaluate({"self": here, "oldSelf": here})
    except CELEvalError as err:  # raised rather than returned, in some places
        result = err
    except Exception as err:  # anything else this evaluator cannot do
        raise Unevaluable(f"cannot be evaluated here ({type(err).__name__})") from None
    if isinstance(result, CELEvalError):
        undeclared = _UNDECLARED.search(str(result.args[0]) if result.args else "")
        if undeclared:
            raise Unevaluable(f"uses {undeclared.group(1)}(), which this evaluator does not have")
        return False, f"evaluation error: {result.args[0] if result.args else result}"
    if not isinstance(result, celpy.celtypes.BoolType):
        return False, f"evaluated to {type(result).__name__}, not a bool"
    return bool(result), ""


def rule_findings(obj: Obj, schema: Obj, kind: str) -> Iterator[PreflightFinding]:
    name = display(obj)

    def walk(value: Any, node: Obj, path: str) -> Iterator[PreflightFinding]:
        for spec in node.get("x-kubernetes-validations") or []:
            rule = spec.get("rule") if isinstance(spec, dict) else None
            if not isinstance(rule, str):
                continue
            where = path or "(the object)"
            try:
                holds, why = evaluate(rule, value, node)
            except Unevaluable as err:
                yield PreflightFinding(
                    kind,
                    name,
                    "crd.rule.unevaluable",
                    where,
                    fit(f"{where}: rule `{rule}` {err}: check it by hand", MAX_MESSAGE),
                    False,
                )
                continue
            if not holds:
                said = spec.get("message") or f"failed rule: {rule}"
                text = f"{where}: {said} (rule `{rule}`{'; ' + why if why else ''})"
                yield PreflightFinding(kind, name, "crd.rule", where, fit(text, MAX_MESSAGE), True)
        for where, item, sub in children(value, node, path):
            if item is not None and sub:  # rules hold no sway over a null
                yield from walk(item, sub, where)

    yield from walk(without_nulls(obj, schema), schema, "")


# --- the whole check ---------------------------------------------------------------


def kind_of(obj: Obj) -> tuple[str, str]:
    """(group, kind) of a manifest."""
    return str(obj.get("apiVersion") or "").rpartition("/")[0], str(obj.get("kind") or "")


def check_objects(
    crds: Mapping[tuple[str, str], CRD], objects: Iterable[Obj]
) -> list[PreflightFinding]:
    """Every finding for objects of the kinds `crds` define (others are skipped)."""
    found: list[PreflightFinding] = []
    for obj in objects:
        group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
        kind = str(obj.get("kind") or "")
        crd = crds.get((group, kind))
        if crd is None:
            continue
        served = crd.version(version)
        if served is None or not served.served:
            found.append(
                PreflightFinding(
                    kind,
                    display(obj),
                    "crd.version.unserved",
                    "apiVersion",
                    f"apiVersion {group}/{version}: the new CRD serves "
                    f"{', '.join(crd.served) or 'no version'}, so this object could no longer "
                    "be read or written; migrate it to a served version first",
                    True,
                )
            )
            continue
        if served.schema is None:
            continue
        found += schema_findings(obj, served.schema, kind)
        found += rule_findings(obj, served.schema, kind)
    return sorted(found, key=lambda f: (f.kind, f.name, f.check, f.path, f.message))


def check_versions(
    crds: Mapping[tuple[str, str], CRD],
    stored: Mapping[tuple[str, str], tuple[str, ...]],
    counts: Mapping[tuple[str, str], int],
    current_storage: Mapping[tuple[str, str], str | None],
) -> list[PreflightFinding]:
    """What the new CRDs do to the versions objects are stored in, per kind:
    `stored` is each installed CRD's status.storedVersions, `counts` how many
    objects of the kind exist, `current_storage` its storage version today."""
    found = []
    for key, versions in sorted(stored.items()):
        crd = crds.get(key)
        if crd is None:
            continue
        count = counts.get(key, 0)
        for version in versions:
            if version not in crd.served:
                found.append(
                    PreflightFinding(
                        "CustomResourceDefinition",
                        crd.name,
                        "crd.version.unserved",
                        "status.storedVersions",
                        f"{crd.kind} objects may be stored as {crd.group}/{version} "
                        f"({count} exist), which the new CRD no longer serves: the apiserver "
                        "refuses the CRD until that version leaves status.storedVersions; "
                        "rewrite every object in a served version (storage version migration) "
                        "and remove it from status.storedVersions first",
                        True,
                    )
                )
        now = current_storage.get(key)
        if count and now and crd.storage and crd.storage != now:
            found.append(
                PreflightFinding(
                    "CustomResourceDefinition",
                    crd.name,
                    "crd.version.storage-moved",
                    "spec.versions[].storage",
                    f"the storage version moves from {now} to {crd.storage}: the {count} "
                    f"{crd.kind} objects stay stored as {now} until each is written again; "
                    f"migrate them before a later release stops serving {now}",
                    False,
                )
            )
    return found


RATCHETING = (
    "CRD validation ratcheting (Kubernetes 1.30+, on by default; GA in 1.33) lets a write "
    "through that leaves the refused fields as they are, so finalizers can still be removed; "
    "without it every write of such an object is refused, finalizer removal included"
)


def ratcheting_note(server_minor: int | None) -> str:
    if server_minor is None:
        return RATCHETING
    if server_minor >= 30:
        return f"this cluster (1.{server_minor}) ratchets unless the gate is off: " + RATCHETING
    return f"this cluster (1.{server_minor}) does not ratchet: " + RATCHETING
