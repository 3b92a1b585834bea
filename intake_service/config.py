"""Intake settings (env prefix INTAKE_)."""

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from intake_service.domain.evidence import MIB, EvidenceLimits, SizeClass
from intake_service.domain.scope import ScopePolicy
from intake_service.domain.windows import AfterSalesWindows
from shared.events.vocabulary import Channel
from shared.settings import PiiSettings

# First-response promises per channel (DOMAIN.md §1), in seconds.
DEFAULT_RESPONSE_PROMISES: dict[Channel, int] = {
    Channel.CHAT: 60,
    Channel.HOTLINE: 30,
    Channel.APP: 24 * 3600,
    Channel.WEB: 24 * 3600,
    Channel.EMAIL: 24 * 3600,
    Channel.SOCIAL: 24 * 3600,
    Channel.STORE: 24 * 3600,
    Channel.OTHER: 24 * 3600,
}

EVIDENCE_PATH = "/v1/evidence"
# Boundaries, part headers and the small form fields around an uploaded file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class Settings(PiiSettings):
    """Intake's settings."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True)

    database_url: str = "postgresql+asyncpg://intake:intake_local@127.0.0.1:5432/complaints"
    idempotency_key_ttl_hours: int = Field(default=24, ge=24)
    response_promise_seconds: dict[Channel, int] = Field(
        default_factory=lambda: dict(DEFAULT_RESPONSE_PROMISES)
    )
    # A channel without a promise of its own gets this one.
    default_response_promise_seconds: int = Field(default=24 * 3600, gt=0)
    # Complaint numbers follow the business's calendar month.
    business_timezone: str = "Asia/Shanghai"
    # After-sales windows from delivery, in days (domain/windows.py explains them).
    no_reason_return_days: int = Field(default=7, ge=0)
    quality_return_days: int = Field(default=15, ge=0)
    exchange_days: int = Field(default=15, ge=0)
    warranty_days: int = Field(default=365, ge=0)
    # A customer asked for missing information is expected to answer within this.
    info_answer_within_hours: int = Field(default=48, gt=0)
    # Same customer, order and target within this many days: linked to the open complaint.
    duplicate_window_days: int = Field(default=30, gt=0)
    # Open complaints one customer may have at once; one more is refused with 429.
    max_open_complaints_per_customer: int = Field(default=10, gt=0)
    # Compensation above this multiple of the order amount is declined as out of policy.
    max_compensation_to_order_ratio: Decimal = Field(default=Decimal("10"), gt=0)
    history_page_size: int = Field(default=20, gt=0, le=100)

    # Evidence files: where they are kept (INTAKE_EVIDENCE_BACKEND=local|s3) and their limits.
    evidence_backend: Literal["local", "s3"] = "local"
    evidence_local_directory: Path = Path(".run/evidence")
    evidence_s3_endpoint_url: str | None = None  # None: AWS itself
    evidence_s3_bucket: str | None = None
    evidence_s3_region: str = "us-east-1"
    evidence_s3_access_key_id: str | None = None  # None: the usual AWS credential chain
    evidence_s3_secret_access_key: SecretStr | None = None
    evidence_s3_key_prefix: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.\-]*/)?$")
    evidence_max_image_bytes: int = Field(default=10 * MIB, ge=1024)
    evidence_max_video_bytes: int = Field(default=100 * MIB, ge=1024)
    evidence_max_document_bytes: int = Field(default=10 * MIB, ge=1024)
    # At most 20: the create request refuses longer `evidence_ids` lists before this is read.
    evidence_max_per_complaint: int = Field(default=10, ge=0, le=20)
    # Uploads not yet attached to a complaint, per storefront and customer: a soft cap (two
    # concurrent uploads may both pass it) that keeps one caller from filling the storage.
    evidence_max_unattached_per_customer: int = Field(default=20, ge=1)
    # Uploads never attached to a complaint are deleted, file and row, after this long.
    evidence_unattached_max_age_hours: float = Field(default=24, gt=0)

    @field_validator(
        "evidence_s3_endpoint_url",
        "evidence_s3_access_key_id",
        "evidence_s3_secret_access_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty value in a manifest means unset: AWS itself, the usual credential chain.
        return None if value == "" else value

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> "Settings":
        if self.evidence_backend == "s3" and not self.evidence_s3_bucket:
            raise ValueError("INTAKE_EVIDENCE_BACKEND=s3 needs INTAKE_EVIDENCE_S3_BUCKET")
        return self

    @property
    def evidence_limits(self) -> EvidenceLimits:
        """The evidence rules' numbers."""
        return EvidenceLimits(
            max_bytes={
                SizeClass.IMAGE: self.evidence_max_image_bytes,
                SizeClass.VIDEO: self.evidence_max_video_bytes,
                SizeClass.DOCUMENT: self.evidence_max_document_bytes,
            },
            max_per_complaint=self.evidence_max_per_complaint,
        )

    def body_limits_by_path_prefix(self) -> dict[str, int]:
        """Evidence uploads may carry the largest file plus the form's other parts."""
        return {EVIDENCE_PATH: self.evidence_limits.largest_file_bytes + MULTIPART_OVERHEAD_BYTES}

    @property
    def after_sales_windows(self) -> AfterSalesWindows:
        """The after-sales windows' numbers."""
        return AfterSalesWindows(
            no_reason_return_days=self.no_reason_return_days,
            quality_return_days=self.quality_return_days,
            exchange_days=self.exchange_days,
            warranty_days=self.warranty_days,
        )

    @property
    def scope_policy(self) -> ScopePolicy:
        """The scope rules' numbers."""
        return ScopePolicy(max_compensation_to_order_ratio=self.max_compensation_to_order_ratio)

    @property
    def timezone(self) -> ZoneInfo:
        """The business's time zone (complaint numbers follow its calendar month)."""
        return ZoneInfo(self.business_timezone)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
