"""JSON Schema snapshots of every event, and the rule for changing them.

A committed snapshot is the reviewed contract. `compare(old, new)` sorts each difference:
- widening: every event valid under the old schema is still valid (new optional field, new
  enum value, a relaxed or removed constraint, a field no longer required). Allowed within a
  major version, once reviewed: regenerate the snapshot.
- narrowing: some event valid under the old schema is refused now (removed field, new required
  field, changed type, tighter pattern or length, removed enum value). Refused: a narrowing
  change is a new payload class on a new topic version.
- annotation: documentation only (title, description, examples, default).

`python -m shared.events.snapshots` rewrites the snapshots but refuses a narrowing change.
"""

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.events.envelope import EventEnvelope
from shared.events.registry import PAYLOAD_CLASSES

SNAPSHOT_DIR = Path(__file__).parent / "schemas"

Schema = dict[str, Any]


def snapshot_name(event_type: str, schema_version: int) -> str:
    """Names the snapshot file of one event type and major version."""
    return f"{event_type}.v{schema_version}.json"


def current_schemas() -> dict[str, Schema]:
    """Renders the JSON Schema of each event (envelope with its typed payload)."""
    schemas: dict[str, Schema] = {}
    for cls in PAYLOAD_CLASSES:
        schema = EventEnvelope[cls].model_json_schema()  # type: ignore[valid-type]
        schemas[snapshot_name(cls.event_type, cls.schema_version)] = schema
    return schemas


def render(schema: Schema) -> str:
    """Serialises a schema deterministically."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def committed_schema(name: str) -> Schema | None:
    """The committed snapshot of one event, or None when there is none yet."""
    path = SNAPSHOT_DIR / name
    if not path.exists():
        return None
    loaded: Schema = json.loads(path.read_text(encoding="utf-8"))
    return loaded


# --- Comparing two schemas -----------------------------------------------------------


class ChangeKind(StrEnum):
    """How a difference between two schemas affects the events they accept."""

    WIDENING = "widening"
    NARROWING = "narrowing"
    ANNOTATION = "annotation"


@dataclass(frozen=True)
class Change:
    """One difference between an old and a new schema, at a path like `payload.category`."""

    kind: ChangeKind
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.path or '(root)'}: {self.detail}"


ANNOTATION_KEYS = frozenset({"title", "description", "examples", "default", "$comment"})
# Keywords whose larger value accepts more (upper bounds) or fewer (lower bounds).
UPPER_BOUNDS = frozenset({"maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum"})
LOWER_BOUNDS = frozenset({"minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum"})
UNDERSTOOD_KEYS = (
    ANNOTATION_KEYS
    | UPPER_BOUNDS
    | LOWER_BOUNDS
    | {"type", "enum", "const", "pattern", "format", "properties", "required"}
    | {"additionalProperties", "items", "anyOf", "oneOf", "$ref", "$defs", "uniqueItems"}
)
_ANY = "any"


def compare(old: Schema, new: Schema) -> list[Change]:
    """Lists every difference between two JSON Schemas, each classified (see module doc)."""
    return list(_Comparison(old, new).changes())


def narrowing(changes: list[Change]) -> list[Change]:
    """The changes that refuse events the old schema accepted."""
    return [change for change in changes if change.kind is ChangeKind.NARROWING]


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self._visiting: set[tuple[str, str]] = set()

    def changes(self) -> Iterator[Change]:
        yield from self._node(self.old_root, self.new_root, "")

    # A $ref is replaced by its definition; sibling keys (a field's title) stay on top.
    def _resolve(self, node: Schema, root: Schema) -> Schema:
        while "$ref" in node:
            name = str(node["$ref"]).removeprefix("#/$defs/")
            target = root.get("$defs", {}).get(name, {})
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def _node(self, old: Schema, new: Schema, path: str) -> Iterator[Change]:
        key = (json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True))
        if key in self._visiting:  # a recursive definition compared already on this path
            return
        self._visiting.add(key)
        try:
            yield from self._resolved(
                self._resolve(old, self.old_root), self._resolve(new, self.new_root), path
            )
        finally:
            self._visiting.discard(key)

    def _resolved(self, old: Schema, new: Schema, path: str) -> Iterator[Change]:
        yield from _annotations(old, new, path)
        old_branches = self._branches(old, self.old_root)
        new_branches = self._branches(new, self.new_root)
        if len(old_branches) == 1 and len(new_branches) == 1:
            yield from self._branch(old_branches[0], new_branches[0], path)
            return
        # Alternatives are paired by kind (string, null, object...), in order within a kind.
        old_by_kind, new_by_kind = _by_kind(old_branches), _by_kind(new_branches)
        for kind in sorted(old_by_kind.keys() | new_by_kind.keys()):
            olds, news = old_by_kind.get(kind, []), new_by_kind.get(kind, [])
            for old_branch, new_branch in zip(olds, news, strict=False):
                yield from self._branch(old_branch, new_branch, path)
            if len(olds) > len(news) and _ANY not in new_by_kind:
                yield Change(ChangeKind.NARROWING, path, f"no longer accepts {kind}")
            if len(news) > len(olds) and _ANY not in old_by_kind:
                yield Change(ChangeKind.WIDENING, path, f"now also accepts {kind}")

    def _branches(self, node: Schema, root: Schema) -> list[Schema]:
        alternatives = node.get("anyOf") or node.get("oneOf")
        if not alternatives:
            return [{k: v for k, v in node.items() if k not in ANNOTATION_KEYS}]
        return [self._resolve(branch, root) for branch in alternatives]

    def _branch(self, old: Schema, new: Schema, path: str) -> Iterator[Change]:
        yield from _annotations(old, new, path)  # of one alternative (a field's are done)
        if _kind(old) != _kind(new):
            if _kind(new) == _ANY:
                yield Change(ChangeKind.WIDENING, path, f"{_kind(old)} opened to any value")
            else:
                yield Change(
                    ChangeKind.NARROWING, path, f"type changed from {_kind(old)} to {_kind(new)}"
                )
            return
        yield from _values(old, new, path)
        yield from _pattern(old, new, path)
        yield from _bounds(old, new, path)
        yield from _keyword_added_narrows(old, new, path, "format")
        yield from _keyword_added_narrows(old, new, path, "uniqueItems")
        yield from self._object(old, new, path)
        if "items" in old or "items" in new:
            yield from self._node(old.get("items", {}), new.get("items", {}), f"{path}[]")
        for name in sorted((old.keys() | new.keys()) - UNDERSTOOD_KEYS):
            if old.get(name) != new.get(name):
                yield Change(
                    ChangeKind.NARROWING, path, f"{name} changed; not understood, review by hand"
                )

    def _object(self, old: Schema, new: Schema, path: str) -> Iterator[Change]:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name in sorted(old_props.keys() - new_props.keys()):
            yield Change(ChangeKind.NARROWING, _join(path, name), "field removed")
        for name in sorted(new_props.keys() - old_props.keys()):
            if name in new_required:
                yield Change(ChangeKind.NARROWING, _join(path, name), "new required field")
            else:
                yield Change(ChangeKind.WIDENING, _join(path, name), "new optional field")
        for name in sorted(old_props.keys() & new_props.keys()):
            field_path = _join(path, name)
            if name in new_required and name not in old_required:
                yield Change(ChangeKind.NARROWING, field_path, "now required")
            elif name in old_required and name not in new_required:
                yield Change(ChangeKind.WIDENING, field_path, "no longer required")
            yield from self._node(old_props[name], new_props[name], field_path)
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if old_extra != new_extra:
            if isinstance(old_extra, dict) and isinstance(new_extra, dict):
                yield from self._node(old_extra, new_extra, _join(path, "*"))
            elif new_extra is True:
                yield Change(ChangeKind.WIDENING, path, "now allows any extra field")
            else:
                yield Change(ChangeKind.NARROWING, path, "restricts extra fields")


_JSON_TYPES: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _kind(branch: Schema) -> str:
    declared = branch.get("type")
    if isinstance(declared, list):
        return "|".join(sorted(declared))
    if isinstance(declared, str):
        return declared
    values = _allowed_values(branch)
    if values is not None:  # an untyped enum or const: the type of its values
        kinds = {_JSON_TYPES.get(type(value), "enum") for value in values}
        return kinds.pop() if len(kinds) == 1 else "enum"
    if "properties" in branch:
        return "object"
    return _ANY


def _by_kind(branches: list[Schema]) -> dict[str, list[Schema]]:
    grouped: dict[str, list[Schema]] = {}
    for branch in branches:
        grouped.setdefault(_kind(branch), []).append(branch)
    return grouped


def _annotations(old: Schema, new: Schema, path: str) -> Iterator[Change]:
    for name in sorted(ANNOTATION_KEYS):
        before, after = old.get(name), new.get(name)
        if before != after:
            yield Change(ChangeKind.ANNOTATION, path, f"{name} {_brief(before)} -> {_brief(after)}")


def _brief(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _allowed_values(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def _values(old: Schema, new: Schema, path: str) -> Iterator[Change]:
    old_values, new_values = _allowed_values(old), _allowed_values(new)
    if old_values == new_values:
        return
    if new_values is None:
        yield Change(ChangeKind.WIDENING, path, f"open now, was one of {old_values}")
    elif old_values is None:
        yield Change(ChangeKind.NARROWING, path, f"restricted to {new_values}")
    else:
        removed = [value for value in old_values if value not in new_values]
        added = [value for value in new_values if value not in old_values]
        if removed:
            yield Change(ChangeKind.NARROWING, path, f"no longer accepts {removed}")
        if added:
            yield Change(ChangeKind.WIDENING, path, f"now also accepts {added}")


def _pattern(old: Schema, new: Schema, path: str) -> Iterator[Change]:
    old_pattern, new_pattern = old.get("pattern"), new.get("pattern")
    if old_pattern == new_pattern:
        return
    if new_pattern is None:
        yield Change(ChangeKind.WIDENING, path, "pattern removed")
        return
    old_values = _allowed_values(old)
    if old_pattern is None and old_values is not None:
        # An enum opened to a pattern narrows only if a value it listed no longer matches.
        refused = [v for v in old_values if not re.search(new_pattern, str(v))]
        if refused:
            yield Change(ChangeKind.NARROWING, path, f"pattern refuses former values {refused}")
        return
    # Whether one regular expression accepts everything another does is not decidable here.
    what = "added" if old_pattern is None else "changed"
    yield Change(ChangeKind.NARROWING, path, f"pattern {what}: {new_pattern}")


def _bounds(old: Schema, new: Schema, path: str) -> Iterator[Change]:
    for name in sorted(UPPER_BOUNDS | LOWER_BOUNDS):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        upper = name in UPPER_BOUNDS
        if after is None:
            looser = True
        elif before is None:
            looser = False
        else:
            looser = after > before if upper else after < before
        kind = ChangeKind.WIDENING if looser else ChangeKind.NARROWING
        yield Change(kind, path, f"{name} {before} -> {after}")


def _keyword_added_narrows(old: Schema, new: Schema, path: str, name: str) -> Iterator[Change]:
    before, after = old.get(name), new.get(name)
    if before == after:
        return
    kind = ChangeKind.WIDENING if after in (None, False) else ChangeKind.NARROWING
    yield Change(kind, path, f"{name} {before} -> {after}")


# --- Writing snapshots -------------------------------------------------------------


class NarrowingChangeError(Exception):
    """A contract would refuse events its committed snapshot accepts."""


def pending_changes() -> dict[str, list[Change]]:
    """Differences between the code and each committed snapshot (new events omitted)."""
    pending: dict[str, list[Change]] = {}
    for name, schema in current_schemas().items():
        committed = committed_schema(name)
        if committed is not None:
            pending[name] = compare(committed, schema)
    return pending


def write_snapshots() -> list[Path]:
    """Rewrites the committed snapshots from the code; refuses a narrowing change."""
    refused = {name: narrowing(changes) for name, changes in pending_changes().items()}
    refused = {name: changes for name, changes in refused.items() if changes}
    if refused:
        lines = [f"{name}: {change}" for name, changes in refused.items() for change in changes]
        raise NarrowingChangeError(
            "narrowing changes refuse events the committed contract accepts; make a new payload "
            "class and topic version instead:\n  " + "\n  ".join(lines)
        )
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    written = []
    for name, schema in current_schemas().items():
        path = SNAPSHOT_DIR / name
        text = render(schema)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main() -> int:
    """Regenerates snapshots after a reviewed widening change, printing what changed."""
    for name, changes in pending_changes().items():
        for change in changes:
            print(f"{name}: {change}")  # noqa: T201
    try:
        written = write_snapshots()
    except NarrowingChangeError as exc:
        print(exc, file=sys.stderr)  # noqa: T201
        return 1
    for path in written:
        print(f"wrote {path}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
