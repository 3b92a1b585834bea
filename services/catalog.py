"""The service catalog: name, port, schema, role and topics of each service."""

from dataclasses import dataclass

from shared.events.topics import Topic


@dataclass(frozen=True)
class ServiceEntry:
    """One service as the process layer sees it."""

    name: str
    port: int
    topics_in: tuple[Topic, ...]
    topics_out: tuple[Topic, ...]

    @property
    def package(self) -> str:
        """The Python package, e.g. intake_service."""
        return f"{self.name}_service"

    @property
    def app(self) -> str:
        """The ASGI app path uvicorn loads."""
        return f"{self.package}.main:app"

    @property
    def schema(self) -> str:
        """The Postgres schema it owns (also its login role)."""
        return self.name

    @property
    def env_prefix(self) -> str:
        """The prefix of its settings in the environment."""
        return f"{self.name.upper()}_"


CATALOG: tuple[ServiceEntry, ...] = (
    # Intake reads the others' events for the customer's view of each complaint.
    ServiceEntry(
        "intake",
        8001,
        (Topic.TRIAGE_COMPLAINT, Topic.RESOLUTION_CASE, Topic.NOTIFICATION_DELIVERY),
        (Topic.INTAKE_COMPLAINT,),
    ),
    # Triage reads the case's state to pause its SLA clocks while the customer is awaited.
    ServiceEntry(
        "triage",
        8002,
        (Topic.INTAKE_COMPLAINT, Topic.RESOLUTION_CASE),
        (Topic.TRIAGE_COMPLAINT,),
    ),
    # Resolution reads intake only for what a case needs: the facts at receipt (storefront,
    # account flags, the order), withdrawals and erasures.
    ServiceEntry(
        "resolution",
        8003,
        (Topic.INTAKE_COMPLAINT, Topic.TRIAGE_COMPLAINT),
        (Topic.RESOLUTION_CASE,),
    ),
    ServiceEntry(
        "notification",
        8004,
        (Topic.INTAKE_COMPLAINT, Topic.TRIAGE_COMPLAINT, Topic.RESOLUTION_CASE),
        (Topic.NOTIFICATION_DELIVERY,),
    ),
)

BY_NAME = {entry.name: entry for entry in CATALOG}


def select_services(names: list[str] | None) -> list[ServiceEntry]:
    """The named services (all when none are named); unknown names are an error."""
    if not names:
        return list(CATALOG)
    unknown = [name for name in names if name.removesuffix("_service") not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [BY_NAME[name.removesuffix("_service")] for name in names]
