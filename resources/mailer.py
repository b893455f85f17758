"""The mailer as a Dagster resource: SMTP from the environment, else the local mail folder."""


import dagster as dg

from campaigns.core.config import DialerConfig
from campaigns.reporting.mailer import Mailer


class MailerResource(dg.ConfigurableResource):
    """Sends the reports. Host, port, security, user and password come from `DIALER_SMTP_*`
    (never from the definitions); with no `DIALER_SMTP_HOST` mail goes to `<DIALER_HOME>/mail`."""

    retries: int = 2

    def mailer(self) -> Mailer:
        # Read at run time, so a run sees the environment it runs in.
        from dataclasses import replace

        return replace(Mailer.from_config(DialerConfig.from_env().mail), retries=self.retries)
