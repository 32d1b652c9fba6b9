"""Where TracePulse reports go: a Slack incoming webhook (a message with blocks) and
SMTP e-mail (STARTTLS and login when configured). Each ``send`` raises on failure; the
engine (``collector.pulse.engine``) retries with backoff and counts every attempt."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import aiohttp

from collector.config.sections import PulseConfig, PulseEmailConfig, PulseSlackConfig
from collector.pulse import Notifier

__all__ = ["EmailNotifier", "SlackNotifier", "notifiers", "slack_message"]

_SLACK_TIMEOUT_S = 10.0
_SLACK_TEXT = 2900  # a section's text is limited to 3000 characters


def notifiers(config: PulseConfig) -> list[Notifier]:
    """The notifiers ``pulse.slack`` and ``pulse.email`` configure."""
    found: list[Notifier] = []
    if config.slack is not None:
        found.append(SlackNotifier(config.slack))
    if config.email is not None:
        found.append(EmailNotifier(config.email))
    return found


def _mrkdwn(value: object) -> str:
    """Text for Slack's mrkdwn: names and messages come from whoever sent the event, and
    Slack reads ``<url|text>`` as a link, so its three control characters are escaped."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(report: dict[str, Any]) -> dict[str, Any]:
    """Slack's message format: ``text`` (the notification) and ``blocks``."""
    incident = report.get("incident", {})
    title = (
        f"{incident.get('event_type')} in {incident.get('service')} ({incident.get('error_code')})"
    )
    correlation_id = _mrkdwn(incident.get("correlation_id"))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Correlation id*\n`{correlation_id}`"},
                {"type": "mrkdwn", "text": f"*Priority*\n{_mrkdwn(incident.get('priority'))}"},
                {"type": "mrkdwn", "text": f"*Seen*\n{incident.get('occurrences', 1)} time(s)"},
                {"type": "mrkdwn", "text": f"*Status*\n{_mrkdwn(report.get('status'))}"},
            ],
        },
    ]
    for i, h in enumerate(report.get("hypotheses", [])[:3], 1):
        reasons = "\n".join(f"• {_mrkdwn(r)}" for r in h.get("reasoning", [])[:6])
        text = f"*{i}. {_mrkdwn(h.get('cause'))}* (confidence {h.get('confidence')})\n{reasons}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:_SLACK_TEXT]}})
    checks = report.get("next_checks", [])[:4]
    if checks:
        text = "*Next checks*\n" + "\n".join(f"• {_mrkdwn(c)}" for c in checks)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:_SLACK_TEXT]}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Gasoline TracePulse report `{report['id']}`"}
            ],
        }
    )
    top = (report.get("hypotheses") or [{}])[0].get("cause", "no hypothesis")
    return {"text": _mrkdwn(f"{title}: {top}"), "blocks": blocks}


class SlackNotifier:
    """Posts to an incoming webhook; anything but a 2xx answer is a failure."""

    name = "slack"

    def __init__(self, config: PulseSlackConfig) -> None:
        self.url = config.webhook_url

    async def send(self, report: dict[str, Any]) -> None:
        timeout = aiohttp.ClientTimeout(total=_SLACK_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(self.url, json=slack_message(report)) as resp,
        ):
            if not 200 <= resp.status < 300:
                body = (await resp.text())[:200]
                raise RuntimeError(f"slack answered {resp.status}: {body}")


class EmailNotifier:
    """Sends the Markdown report as a plain-text mail, the JSON attached; smtplib runs
    in a thread so the loop never waits on the server."""

    name = "email"

    def __init__(self, config: PulseEmailConfig) -> None:
        self.config = config

    async def send(self, report: dict[str, Any]) -> None:
        await asyncio.to_thread(self._send, report)

    def _send(self, report: dict[str, Any]) -> None:
        c = self.config
        incident = report.get("incident", {})
        message = EmailMessage()
        message["Subject"] = (
            f"[Gasoline] {incident.get('event_type')} in {incident.get('service')} "
            f"({incident.get('error_code')})"
        )
        message["From"] = c.sender
        message["To"] = ", ".join(c.to)
        message.set_content(str(report.get("markdown", "")))
        message.add_attachment(
            json.dumps(report, indent=1, default=str).encode(),
            maintype="application",
            subtype="json",
            filename=f"report-{report['id']}.json",
        )
        password = c.password or (os.environ.get(c.password_env) if c.password_env else None)
        with smtplib.SMTP(c.host, c.port, timeout=float(c.timeout)) as smtp:
            if c.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=c.ca_file))
            if c.username:
                smtp.login(c.username, password or "")
            smtp.send_message(message)
