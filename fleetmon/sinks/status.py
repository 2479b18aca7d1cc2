"""A site's collector status: the retained message on `fleetmon/v1/<site>/status`.

The collector publishes it (retained, QoS 1) after every cycle, and registers the same message with
`online: false` as its MQTT last will, so the broker marks the site offline when the collector dies
without saying goodbye; a clean stop publishes the offline form itself. Readers (`fleetmon serve` in
reader mode) subscribe to `fleetmon/v1/+/status` and keep the newest status of each site.

    {"site": "tx1", "online": true, "collector_id": "host-a", "version": "0.1.0",
     "sent_at": "2026-12-06T21:50:00.000000Z", "last_cycle_end": "2026-12-06T21:49:59.120000Z",
     "cycle_duration_s": 3.2, "devices_ok": 1180, "devices_failed": 20,
     "spool_samples": 0, "spool_bytes": 0}

Times are ISO 8601 UTC; cycle figures are null until the first cycle ended.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collectors.sample import utcnow
from fleetmon import __version__


class SiteStatus(BaseModel):
    """What a collector says about its site."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # newer collectors may say more

    site: str
    online: bool
    collector_id: str
    version: str = __version__
    sent_at: datetime = Field(default_factory=utcnow)
    last_cycle_end: datetime | None = None
    cycle_duration_s: float | None = Field(default=None, ge=0)
    devices_ok: int | None = Field(default=None, ge=0)
    devices_failed: int | None = Field(default=None, ge=0)
    spool_samples: int | None = Field(default=None, ge=0)
    spool_bytes: int | None = Field(default=None, ge=0)

    def payload(self) -> bytes:
        """The message body."""
        return self.model_dump_json().encode()

    def offline(self) -> SiteStatus:
        """This status as the last will says it: offline, figures of the last cycle kept."""
        return self.model_copy(update={"online": False, "sent_at": utcnow()})

    @classmethod
    def parse(cls, payload: bytes) -> SiteStatus:
        """The status in a message body; ValueError when it is not one (with pydantic's reason)."""
        try:
            status = cls.model_validate_json(payload)
        except ValidationError as exc:
            raise ValueError(f"not a site status: {exc.errors()[0]['msg']}") from exc
        if status.sent_at.tzinfo is None or (
            status.last_cycle_end is not None and status.last_cycle_end.tzinfo is None
        ):
            raise ValueError("not a site status: timestamps must carry a timezone")
        return status
