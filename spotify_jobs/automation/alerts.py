"""Run-failure alerts, routed by the run's priority (no Dagster wiring here; the sensor is in sensors.py).

- critical: a PagerDuty page (Events API v2, deduplicated per run); Slack instead when no pager is set up,
  so a critical failure is never e-mail only;
- high and normal: a Slack message;
- every priority: an e-mail, when SMTP is configured.
low and batch failures therefore only reach e-mail. A run without a priority tag counts as normal.

Slack goes through dagster-slack's `SlackResource` and PagerDuty through dagster-pagerduty's
`PagerDutyService` (its `pypd` client); both are subclassed only to make the API address configurable,
which is how tests point them at a local receiver. Alert text is redacted (no e-mail addresses, IPs,
tokens or configured secrets).
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

import pypd
from dagster_pagerduty import PagerDutyService
from dagster_slack import SlackResource
from slack_sdk.web.client import WebClient

from spotify_jobs.k8s.tags import JOB_TYPE_TAG, PRIORITY_TAG, TENANT_TAG, TIER_TAG
from spotify_jobs.observability.logs import redact
from spotify_jobs.settings import Settings
from spotify_jobs.tenancy.tiers import Priority

SLACK_API_URL = WebClient.BASE_URL
PAGERDUTY_EVENTS_URL = pypd.EventV2.base_url
SEND_TIMEOUT_SECONDS = 10
MAX_DETAIL_CHARS = 1500
PAGERDUTY, SLACK, EMAIL = "pagerduty", "slack", "email"


class SlackAlertResource(SlackResource):
    """dagster-slack's resource with a configurable Web API address (Slack's by default)."""

    base_url: str = SLACK_API_URL

    def get_client(self) -> WebClient:
        return WebClient(token=self.token, base_url=self.base_url, timeout=SEND_TIMEOUT_SECONDS)


class PagerDutyEventsService(PagerDutyService):
    """dagster-pagerduty's service with a configurable Events API v2 address (PagerDuty's by default).

    The parent posts through `pypd.EventV2.create`, whose address is fixed on the class; this posts the same
    event body (validated by pypd) with a `pypd.EventV2` client whose address is `events_api_url`.
    """

    events_api_url: str = PAGERDUTY_EVENTS_URL

    def EventV2_create(
        self,
        summary: str,
        source: str,
        severity: str,
        event_action: str = "trigger",
        dedup_key: str | None = None,
        timestamp: str | None = None,
        component: str | None = None,
        group: str | None = None,
        event_class: str | None = None,
        custom_details: object | None = None,
    ) -> object:
        optional = {
            "timestamp": timestamp,
            "component": component,
            "group": group,
            "class": event_class,
            "custom_details": custom_details,
        }
        data: dict[str, object] = {
            "routing_key": self.routing_key,
            "event_action": event_action,
            "payload": {
                "summary": summary,
                "source": source,
                "severity": severity,
                **{k: v for k, v in optional.items() if v is not None},
            },
        }
        if dedup_key is not None:
            data["dedup_key"] = dedup_key
        pypd.EventV2.validate(data)
        client = pypd.EventV2()
        client.base_url = self.events_api_url  # on this client only; the class keeps PagerDuty's address
        return client.request("POST", data=data)


@dataclass(frozen=True)
class EmailSettings:
    """An SMTP server and who gets the alerts."""

    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False

    def __post_init__(self):
        if not self.recipients:
            raise ValueError("e-mail alerts need at least one recipient")


@dataclass(frozen=True)
class AlertChannels:
    """Where failure alerts go; a channel left out is not used."""

    slack: SlackAlertResource | None = None
    slack_channel: str = "#spotify-jobs-alerts"
    pagerduty: PagerDutyEventsService | None = None
    email: EmailSettings | None = None
    webserver_base_url: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values never to appear in alert text

    @classmethod
    def configure(
        cls,
        *,
        slack_token: str | None = None,
        slack_channel: str = "#spotify-jobs-alerts",
        slack_api_url: str = SLACK_API_URL,
        pagerduty_routing_key: str | None = None,
        pagerduty_events_url: str = PAGERDUTY_EVENTS_URL,
        smtp_host: str | None = None,
        smtp_port: int = 25,
        smtp_from: str | None = None,
        smtp_to: tuple[str, ...] | list[str] = (),
        smtp_username: str | None = None,
        smtp_password: str | None = None,
        smtp_starttls: bool = False,
        webserver_base_url: str | None = None,
        secrets: tuple[str, ...] = (),
    ) -> AlertChannels:
        """Channels from plain settings values: each channel is on when its address/credential is given."""
        if smtp_host and not smtp_from:
            raise ValueError("e-mail alerts need a sender address (smtp_from)")
        return cls(
            slack=SlackAlertResource(token=slack_token, base_url=slack_api_url) if slack_token else None,
            slack_channel=slack_channel,
            pagerduty=(
                PagerDutyEventsService(routing_key=pagerduty_routing_key, events_api_url=pagerduty_events_url)
                if pagerduty_routing_key
                else None
            ),
            email=(
                EmailSettings(
                    host=smtp_host,
                    port=smtp_port,
                    sender=smtp_from or "",
                    recipients=tuple(smtp_to),
                    username=smtp_username,
                    password=smtp_password,
                    starttls=smtp_starttls,
                )
                if smtp_host
                else None
            ),
            webserver_base_url=webserver_base_url,
            secrets=tuple(s for s in (*secrets, slack_token, pagerduty_routing_key, smtp_password) if s),
        )

    def routes(self, priority: str | None) -> list[str]:
        """The channels a failure of this priority goes to, in sending order."""
        level = Priority(priority) if priority in Priority._value2member_map_ else Priority.NORMAL
        routes = []
        if level is Priority.CRITICAL and self.pagerduty:
            routes.append(PAGERDUTY)
        elif self.slack and level in (Priority.CRITICAL, Priority.HIGH, Priority.NORMAL):
            routes.append(SLACK)
        if self.email:
            routes.append(EMAIL)
        return routes


@dataclass(frozen=True)
class RunFailureAlert:
    """What an alert says about one failed run."""

    run_id: str
    job_name: str
    tenant: str
    job_type: str
    priority: str
    tier: str
    partition: str
    error: str
    url: str | None = None

    @classmethod
    def from_run(
        cls,
        run_id: str,
        job_name: str,
        tags: Mapping[str, str],
        error: str,
        channels: AlertChannels,
    ) -> RunFailureAlert:
        base = channels.webserver_base_url
        return cls(
            run_id=run_id,
            job_name=job_name,
            tenant=tags.get(TENANT_TAG, "-"),
            job_type=tags.get(JOB_TYPE_TAG, "-"),
            priority=tags.get(PRIORITY_TAG, Priority.NORMAL.value),
            tier=tags.get(TIER_TAG, "-"),
            partition=tags.get("dagster/partition", "-"),
            error=redact(error, channels.secrets)[:MAX_DETAIL_CHARS],
            url=f"{base.rstrip('/')}/runs/{run_id}" if base else None,
        )

    @property
    def subject(self) -> str:
        return (
            f"[spotify-jobs] {self.priority.upper()}: {self.job_name} failed for tenant {self.tenant} "
            f"({self.partition})"
        )

    @property
    def text(self) -> str:
        lines = [
            self.subject,
            f"run: {self.run_id}",
            f"job type: {self.job_type}  tier: {self.tier}  priority: {self.priority}",
            f"error: {self.error}",
        ]
        if self.url:
            lines.append(f"details: {self.url}")
        return "\n".join(lines)


def send_slack(alert: RunFailureAlert, channels: AlertChannels) -> None:
    channels.slack.get_client().chat_postMessage(channel=channels.slack_channel, text=alert.text)


def send_page(alert: RunFailureAlert, channels: AlertChannels) -> None:
    channels.pagerduty.EventV2_create(
        summary=alert.subject,
        source=f"spotify-jobs/{alert.job_name}",
        severity="critical",
        dedup_key=f"spotify-jobs-run-{alert.run_id}",
        component=alert.job_type,
        group=alert.tenant,
        event_class="run failure",
        custom_details={
            "run_id": alert.run_id,
            "partition": alert.partition,
            "tier": alert.tier,
            "error": alert.error,
            **({"url": alert.url} if alert.url else {}),
        },
    )


def send_email(alert: RunFailureAlert, channels: AlertChannels) -> None:
    settings = channels.email
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content(alert.text)
    with smtplib.SMTP(settings.host, settings.port, timeout=SEND_TIMEOUT_SECONDS) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)


_SENDERS = {PAGERDUTY: send_page, SLACK: send_slack, EMAIL: send_email}


def deliver(alert: RunFailureAlert, channels: AlertChannels) -> dict[str, str | None]:
    """Send the alert on every route of its priority; channel -> None when sent, else why not.

    One channel failing never stops the others.
    """
    outcome: dict[str, str | None] = {}
    for route in channels.routes(alert.priority):
        try:
            _SENDERS[route](alert, channels)
            outcome[route] = None
        except Exception as exc:  # any client or network error: report it, try the next channel
            outcome[route] = redact(f"{type(exc).__name__}: {exc}", channels.secrets)
    return outcome


def alert_channels_from_settings(settings: Settings) -> AlertChannels:
    """The failure-alert channels the settings configure (none by default)."""

    def secret(value) -> str | None:
        return value.get_secret_value() if value else None

    return AlertChannels.configure(
        slack_token=secret(settings.slack_token),
        slack_channel=settings.slack_channel,
        slack_api_url=settings.slack_api_url,
        pagerduty_routing_key=secret(settings.pagerduty_routing_key),
        pagerduty_events_url=settings.pagerduty_events_url,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_from=settings.smtp_from,
        smtp_to=[address.strip() for address in settings.smtp_to.split(",") if address.strip()],
        smtp_username=settings.smtp_username,
        smtp_password=secret(settings.smtp_password),
        smtp_starttls=settings.smtp_starttls,
        webserver_base_url=settings.webserver_base_url,
        secrets=(settings.pseudonym_secret.get_secret_value(),),
    )
