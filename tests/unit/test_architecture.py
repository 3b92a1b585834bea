"""Boundaries: services never import each other; shared imports no service."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake_service", "triage_service", "resolution_service", "notification_service")


def imported_top_level_packages(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_service_imports_no_other_service(service: str):
    imports = imported_top_level_packages(service)
    for other in SERVICES:
        if other != service:
            assert other not in imports, f"{service} imports {other} in {sorted(imports[other])}"
    assert "services" not in imports, f"{service} imports the process layer"


def test_shared_imports_no_service():
    imports = imported_top_level_packages("shared")
    offenders = {name: files for name, files in imports.items() if name in (*SERVICES, "services")}
    assert not offenders, f"shared/ must stay service-agnostic: {offenders}"


def test_the_check_sees_imports(tmp_path: Path):
    # Guard against a check that can never fail: it must see a real cross-import.
    imports = imported_top_level_packages("triage_service")
    assert "shared" in imports
    assert "sqlalchemy" in imports


@pytest.mark.parametrize("service", SERVICES)
def test_service_has_the_conventional_modules(service: str):
    for module in (
        "main",
        "config",
        "models",
        "schemas",
        "repository",
        "service",
        "router",
        "handlers",
    ):
        assert (ROOT / service / f"{module}.py").exists(), f"{service}/{module}.py missing"
    assert (ROOT / service / "migrations" / "env.py").exists()


def test_the_catalog_names_exactly_the_topics_each_service_subscribes_to():
    # Kafka ACLs and the bench's lag probe read topics_in: it must match the handlers.
    import importlib

    from services.catalog import CATALOG

    for entry in CATALOG:
        handlers = importlib.import_module(f"{entry.package}.handlers")
        subscribed = set(getattr(handlers, "SUBSCRIPTIONS", {}))
        assert subscribed == set(entry.topics_in), entry.name
