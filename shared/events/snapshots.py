"""JSON Schema snapshots of every event: a changed contract must be reviewed on purpose."""

import json
from pathlib import Path
from typing import Any

from shared.events.envelope import EventEnvelope
from shared.events.registry import PAYLOAD_CLASSES

SNAPSHOT_DIR = Path(__file__).parent / "schemas"


def snapshot_name(event_type: str, schema_version: int) -> str:
    """Names the snapshot file of one event type and major version."""
    return f"{event_type}.v{schema_version}.json"


def current_schemas() -> dict[str, dict[str, Any]]:
    """Renders the JSON Schema of each event (envelope with its typed payload)."""
    schemas: dict[str, dict[str, Any]] = {}
    for cls in PAYLOAD_CLASSES:
        schema = EventEnvelope[cls].model_json_schema()  # type: ignore[valid-type]
        schemas[snapshot_name(cls.event_type, cls.schema_version)] = schema
    return schemas


def render(schema: dict[str, Any]) -> str:
    """Serialises a schema deterministically."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_snapshots() -> list[Path]:
    """Rewrites the committed snapshots from the code (run after a reviewed change)."""
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    written = []
    for name, schema in current_schemas().items():
        path = SNAPSHOT_DIR / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_snapshots():
        print(f"wrote {written_path}")  # noqa: T201
