"""The counting null channel: real payloads, nothing sent, one count shared by every process."""

import multiprocessing

import pytest
from django.core import mail

from campaigns.channels.email import EmailChannel
from campaigns.channels.null import NullChannel, null_counters_reset, null_sent_count
from campaigns.channels.registry import channel_get
from campaigns.composer import RenderedEmail, RenderedSms
from campaigns.sms import sms_count

RENDERED = RenderedEmail(subject="Spring", preheader="", html="<p>Hi</p>", text="Hi")
LINKS = {"unsubscribe_url": "https://tandem.example/m/u/tok", "preferences_url": "https://tandem.example/m/p/tok"}


@pytest.fixture(autouse=True)
def _zero():
    null_counters_reset()
    yield
    null_counters_reset()


def test_a_null_channel_builds_the_real_payload_and_counts_instead_of_sending(settings):
    settings.TANDEM_NULL_CHANNELS = ["email", "sms"]
    email, sms = channel_get("email"), channel_get("sms")
    payloads = [
        email.build_payload(rendered=RENDERED, to=f"c{index}@example.com", metadata={"delivery_id": index}, links=LINKS)
        for index in range(3)
    ]

    results = email.send_many(payloads)
    text = RenderedSms(body="Hi", count=sms_count("Hi"))
    sms.send(sms.build_payload(rendered=text, to="+14155550123", metadata={}, links={}))

    assert isinstance(email, NullChannel)
    assert isinstance(email.real, EmailChannel)
    assert payloads[0].extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [result.provider_id for result in results] == ["null:email:1", "null:email:2", "null:email:3"]
    assert (null_sent_count("email"), null_sent_count("sms"), null_sent_count("push")) == (3, 1, 0)
    assert mail.outbox == []


def test_without_the_setting_the_real_channel_is_used(settings):
    settings.TANDEM_NULL_CHANNELS = []

    assert isinstance(channel_get("email"), EmailChannel)


def _count(times):
    from campaigns.channels.null import _add

    for _ in range(times):
        _add("push", 2)


def test_counts_from_several_processes_add_up():
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_count, args=(50,)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)

    assert all(process.exitcode == 0 for process in processes)
    assert null_sent_count("push") == 400
