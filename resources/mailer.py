"""The mailer as a Dagster resource: an SMTP server, or with no host the local mail folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
from pydantic import Field

from campaigns.core.config import DialerConfig, MailConfig
from campaigns.reporting.mailer import Mailer
from resources.settings import from_environment, resolved


class MailerResource(dg.ConfigurableResource):
    """Sends the reports. The SMTP settings come from `DIALER_SMTP_*` and `DIALER_MAIL_FROM`;
    the password only ever as an EnvVar, never as a value in the definitions."""

    host: str | None = Field(
        default=None, description="SMTP server: `DIALER_SMTP_HOST`; unset, mail is written to the mail folder."
    )
    port: str | None = Field(
        default=None, description="`DIALER_SMTP_PORT`; unset: 465 with ssl, else 587 (25 with none)."
    )
    security: str = Field(default="starttls", description="`DIALER_SMTP_SECURITY`: starttls, ssl or none.")
    user: str | None = Field(default=None, description="`DIALER_SMTP_USER`, when the server wants a login.")
    password: str | None = Field(default=None, description="`DIALER_SMTP_PASSWORD` (an EnvVar).")
    sender: str = Field(default="dialer@localhost", description="The From address: `DIALER_MAIL_FROM`.")
    folder: str | None = Field(
        default=None, description="Where mail goes with no SMTP host: `<DIALER_HOME>/mail`."
    )
    retries: int = 2

    @classmethod
    def from_config(cls, cfg: DialerConfig) -> MailerResource:
        mail = cfg.mail
        return cls(
            host=from_environment(cfg, "DIALER_SMTP_HOST", mail.host),
            port=from_environment(cfg, "DIALER_SMTP_PORT", mail.port),
            security=from_environment(cfg, "DIALER_SMTP_SECURITY", mail.security),
            user=from_environment(cfg, "DIALER_SMTP_USER", mail.user),
            # Never the value itself: the definitions (and the UI) show only the variable's name.
            password=from_environment(cfg, "DIALER_SMTP_PASSWORD", None),
            sender=from_environment(cfg, "DIALER_MAIL_FROM", mail.sender),
            folder=str(mail.folder) if mail.folder else None,
        )

    def mailer(self) -> Mailer:
        """The mailer these settings describe; a malformed port or security setting raises `MailError`."""
        mail = MailConfig(
            host=resolved(self.host), port=resolved(self.port), security=resolved(self.security) or "starttls",
            user=resolved(self.user), password=resolved(self.password),
            sender=resolved(self.sender) or "dialer@localhost", folder=Path(self.folder) if self.folder else None,
        )
        return replace(Mailer.from_config(mail), retries=self.retries)
