"""Protects failure alerts: routed by priority (critical pages, high and normal to Slack, all to e-mail),
received by local Slack / PagerDuty / SMTP receivers, redacted, not sent for a failure that will be
retried, and one broken channel never silences the others."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.test_utils import instance_for_test

from spotify_jobs.automation.alerts import AlertChannels
from spotify_jobs.automation.sensors import build_failure_alert_sensor
from spotify_jobs.k8s.tags import JOB_TYPE_TAG, PRIORITY_TAG, TENANT_TAG, TIER_TAG

SLACK_TOKEN = "xoxb-test-token-not-real"
ROUTING_KEY = "0123456789abcdef0123456789abcdef"


@dg.op
def score_listeners():
    raise RuntimeError("model diverged for listener jane.doe@example.com from 10.20.30.40")


@dg.job
def failing_job():
    score_listeners()


@pytest.fixture(scope="module")
def retry_instance():
    """Run retries on, as in dagster.yaml, but none by default; a run tagged `dagster/max_retries` 1 is
    marked `dagster/will_retry` by the instance when it fails (its retry has not run yet)."""
    with instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 0}}) as instance:
        yield instance


@pytest.fixture
def instance(retry_instance):
    retry_instance.wipe()
    return retry_instance


@pytest.fixture
def receivers(http_receiver, smtp_receiver):
    http_receiver.respond("/chat.postMessage", 200, {"ok": True, "channel": "C1", "ts": "1.0"})
    http_receiver.respond("/v2/enqueue", 202, {"status": "success", "message": "Event processed"})
    return http_receiver, smtp_receiver


def channels(http_receiver, smtp_receiver, *, pagerduty=True) -> AlertChannels:
    return AlertChannels.configure(
        slack_token=SLACK_TOKEN,
        slack_channel="#jobs",
        slack_api_url=f"{http_receiver.url}/",
        pagerduty_routing_key=ROUTING_KEY if pagerduty else None,
        pagerduty_events_url=f"{http_receiver.url}/v2/enqueue",
        smtp_host=smtp_receiver.host,
        smtp_port=smtp_receiver.port,
        smtp_from="dagster@spotify-jobs.test",
        smtp_to=["oncall@spotify-jobs.test", "data@spotify-jobs.test"],
        webserver_base_url="http://dagster.internal",
    )


def fail_run(instance, priority: str, *, last_try: bool) -> dg.DagsterRun:
    tags = {
        TENANT_TAG: "enterprise-001",
        JOB_TYPE_TAG: "data-etl",
        TIER_TAG: "enterprise",
        PRIORITY_TAG: priority,
        "dagster/partition": "2026-11-01|enterprise-001",
        **({} if last_try else {"dagster/max_retries": "1"}),
    }
    result = failing_job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not result.success
    return result.dagster_run


def evaluate(sensor, instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(), cursor=cursor)
    return sensor.evaluate_tick(context)


def alert_on(instance, channels_, *priorities: str, last_try: bool = True):
    """Start the sensor (its first tick only sets its cursor), fail runs, and tick again."""
    sensor = build_failure_alert_sensor(channels_)
    start = evaluate(sensor, instance)
    runs = [fail_run(instance, priority, last_try=last_try) for priority in priorities]
    return runs, evaluate(sensor, instance, start.cursor)


def test_critical_failures_page_and_email(instance, receivers):
    http, smtp = receivers
    [run], _ = alert_on(instance, channels(http, smtp), "critical")

    [page] = http.to("/v2/enqueue")
    event = page.json()
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == f"spotify-jobs-run-{run.run_id}"
    assert event["payload"]["severity"] == "critical"
    assert "failing_job failed for tenant enterprise-001" in event["payload"]["summary"]
    assert event["payload"]["custom_details"]["url"] == f"http://dagster.internal/runs/{run.run_id}"
    assert not http.to("/chat.postMessage")
    [mail] = smtp.messages
    assert mail["Subject"].startswith("[spotify-jobs] CRITICAL: failing_job failed")
    assert smtp.envelopes[0][1] == ["oncall@spotify-jobs.test", "data@spotify-jobs.test"]


@pytest.mark.parametrize("priority", ["high", "normal"])
def test_high_and_normal_failures_go_to_slack_and_email(instance, receivers, priority):
    http, smtp = receivers
    [run], _ = alert_on(instance, channels(http, smtp), priority)

    [post] = http.to("/chat.postMessage")
    assert post.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    body = post.body.decode()
    assert "channel=%23jobs" in body or '"channel": "#jobs"' in body
    assert run.run_id in body
    assert not http.to("/v2/enqueue")
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("priority", ["low", "batch"])
def test_low_and_batch_failures_only_email(instance, receivers, priority):
    http, smtp = receivers
    alert_on(instance, channels(http, smtp), priority)
    assert not http.requests
    assert [m["Subject"].split(":")[0] for m in smtp.messages] == [f"[spotify-jobs] {priority.upper()}"]


def test_critical_falls_back_to_slack_without_a_pager(instance, receivers):
    http, smtp = receivers
    alert_on(instance, channels(http, smtp, pagerduty=False), "critical")
    assert len(http.to("/chat.postMessage")) == 1
    assert len(smtp.messages) == 1


def test_alerts_carry_the_error_but_no_personal_data_or_secrets(instance, receivers):
    http, smtp = receivers
    alert_on(instance, channels(http, smtp), "critical")
    text = smtp.messages[0].get_content()
    assert "model diverged for listener" in text
    for leaked in ("jane.doe@example.com", "10.20.30.40", SLACK_TOKEN, ROUTING_KEY):
        assert leaked not in text
        assert leaked not in http.to("/v2/enqueue")[0].json()["payload"]["custom_details"]["error"]


def test_no_alert_while_the_run_will_be_retried_and_one_on_the_last_try(instance, receivers):
    http, smtp = receivers
    [first_try], _ = alert_on(instance, channels(http, smtp), "critical", last_try=False)
    assert instance.get_run_by_id(first_try.run_id).tags["dagster/will_retry"] == "true"
    assert not smtp.messages and not http.requests

    alert_on(instance, channels(http, smtp), "critical", last_try=True)
    assert len(smtp.messages) == 1
    assert len(http.to("/v2/enqueue")) == 1


def test_a_broken_channel_fails_the_tick_but_the_others_still_get_the_alert(instance, receivers):
    http, smtp = receivers
    http.respond("/chat.postMessage", 200, {"ok": False, "error": "channel_not_found"})

    _, result = alert_on(instance, channels(http, smtp), "high")

    [reaction] = result.dagster_run_reactions
    assert "not delivered on slack" in reaction.error.message
    assert "channel_not_found" in reaction.error.message
    assert SLACK_TOKEN not in reaction.error.message
    assert len(smtp.messages) == 1, "e-mail still went out"


def test_email_alerts_need_a_sender():
    with pytest.raises(ValueError, match="sender"):
        AlertChannels.configure(smtp_host="127.0.0.1", smtp_to=["a@b.test"])
