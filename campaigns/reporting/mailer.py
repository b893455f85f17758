"""Sending email: SMTP when `DIALER_SMTP_HOST` is set, else a local folder (the embedded default).

Settings come from the environment (read by `campaigns.core.config`), never from files in the
repository:

| variable | meaning | default |
|---|---|---|
| `DIALER_SMTP_HOST` | SMTP server; unset: write `.eml` files to `<DIALER_HOME>/mail` | — |
| `DIALER_SMTP_PORT` | port | 465 with `ssl`, else 587 (25 with `none`) |
| `DIALER_SMTP_SECURITY` | `starttls`, `ssl` or `none` | `starttls` |
| `DIALER_SMTP_USER`, `DIALER_SMTP_PASSWORD` | login, when the server wants one | — |
| `DIALER_MAIL_FROM` | the From address | `dialer@localhost` |

A delivery that fails for a reason that may pass (the server unreachable, a
4xx answer, a dropped connection) is tried again with a pause; what still fails
raises `MailError`, so the run that sent it fails visibly.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from campaigns.core.config import MailConfig
from campaigns.core.errors import DialerError

SECURITY = ("starttls", "ssl", "none")


class MailError(DialerError):
    """An email could not be delivered."""


@dataclass(frozen=True)
class Mailer:
    host: str | None = None
    port: int | None = None
    security: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "dialer@localhost"
    folder: Path | None = None
    timeout: float = 30.0
    retries: int = 2
    pause_s: float = 2.0

    @classmethod
    def from_config(cls, mail: MailConfig) -> Mailer:
        """The mailer `mail` describes; a malformed port or security setting raises `MailError`."""
        security = mail.security.lower()
        if security not in SECURITY:
            raise MailError(f"DIALER_SMTP_SECURITY={security!r}: expected one of {', '.join(SECURITY)}.")
        try:
            port_number = int(mail.port) if mail.port else None
        except ValueError:
            raise MailError(f"DIALER_SMTP_PORT={mail.port!r}: expected a port number.") from None
        return cls(host=mail.host, port=port_number, security=security, user=mail.user,
                   password=mail.password, sender=mail.sender, folder=mail.folder)

    @property
    def describe(self) -> str:
        if self.host:
            return f"smtp://{self.host}:{self._port()} ({self.security})"
        return f"the mail folder {self.folder}"

    def _port(self) -> int:
        return self.port or {"ssl": 465, "none": 25}.get(self.security, 587)

    def send(self, message: EmailMessage) -> str:
        """Deliver one message; returns where it went (the server, or the file written)."""
        message["From"] = message["From"] or self.sender
        host = self.host
        if not host:
            return str(self._to_folder(message))
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.pause_s * attempt)
            try:
                self._smtp(host, message)
                return self.describe
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code < 500 or isinstance(exc, smtplib.SMTPServerDisconnected):
                    last = exc
                    continue
                raise MailError(f"{self.describe} refused the message: {exc.smtp_code} {exc.smtp_error!r}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                raise MailError(f"{self.describe} refused the recipients {sorted(exc.recipients)}") from exc
            except (OSError, smtplib.SMTPException) as exc:
                last = exc
        raise MailError(f"could not deliver to {self.describe} after {self.retries + 1} tries: {last}")

    def _smtp(self, host: str, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        client: smtplib.SMTP  # SMTP_SSL is a subclass
        if self.security == "ssl":
            client = smtplib.SMTP_SSL(host, self._port(), timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(host, self._port(), timeout=self.timeout)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.user:
                client.login(self.user, self.password or "")
            client.send_message(message)

    def _to_folder(self, message: EmailMessage) -> Path:
        if self.folder is None:
            raise MailError("no SMTP host and no mail folder: set DIALER_SMTP_HOST or DIALER_HOME.")
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"{stamp}.eml"
        path.write_bytes(bytes(message))
        return path
