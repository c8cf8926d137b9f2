"""Every till hint the demo prints works when a clerk follows it, as printed, through the till pages."""

import io
import re

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.urls import reverse

from loyalty.models import Redemption

pytestmark = pytest.mark.django_db

CLERK = ("clerk-nyc", "demo-clerk-pass")


@pytest.fixture
def demo_output():
    out = io.StringIO()
    call_command("demo_seed", stdout=out)
    call_command("loyalty_demo_seed", stdout=out)
    return out.getvalue()


def _till_hints(output: str) -> list[str]:
    block = output.split("At the till (log in as clerk-nyc", 1)[1].split("\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        lines.append(line.strip())
    return lines


def _successes(response) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request) if m.level_tag == "success"]


def _follow_lookup(client, hint):
    card, phone = re.search(r"card (\d{16}), phone (\+\d+)", hint).groups()
    for query in (card, phone):
        response = client.post(reverse("loyalty:lookup"), {"query": query})
        assert response.status_code == 302, hint
        assert response.url == reverse("loyalty:account", args=[card])
    return card


def _follow_purchase(client, hint, card):
    receipt, amount = re.search(r"e\.g\. (\S+), amount ([\d.]+)", hint).groups()
    response = client.post(reverse("loyalty:purchase", args=[card]), {"receipt": receipt, "amount": amount})
    assert response.status_code == 302, hint
    assert any("points earned" in line for line in _successes(response)), hint


def _follow_code(client, hint):
    match = re.search(r"code (\S+) \(.*card (\d{16}), receipt ([^,\s]+)(?:, order ([\d.]+))?", hint)
    code, card, receipt, amount = match.groups()
    data = {"code": code, "order_reference": receipt, "order_amount": amount or ""}
    check = client.post(reverse("loyalty:coupon-check", args=[card]), data)
    html = check.content.decode()
    assert check.status_code == 200, (hint, re.findall(r"<li>(.*?)</li>", html))
    nonce = re.search(r'name="nonce" value="([^"]+)"', check.content.decode()).group(1)
    confirm = client.post(reverse("loyalty:coupon-confirm", args=[card]), {**data, "nonce": nonce})
    assert confirm.status_code == 302, hint
    assert any("redeemed" in line for line in _successes(confirm)), hint
    assert Redemption.objects.filter(coupon_code__code=code, order_reference=receipt).exists()


def _follow_points(client, hint):
    points, card, receipt = re.search(r"Spend (\d+) points .*on card (\d{16}) .*receipt (\S+)", hint).groups()
    data = {"points": points, "order_reference": receipt, "nonce": f"hint-{receipt}"}
    response = client.post(reverse("loyalty:points", args=[card]), data)
    assert response.status_code == 302, hint
    assert any(f"{points} points spent" in line for line in _successes(response)), hint


def _follow_refund(client, hint):
    receipt = re.search(r"Refund receipt (\S+)", hint).group(1)
    preview = client.post(reverse("loyalty:refund"), {"receipt": receipt})
    assert preview.status_code == 200, hint
    assert "Confirm refund" in preview.content.decode(), hint
    response = client.post(reverse("loyalty:refund-confirm"), {"receipt": receipt})
    assert response.status_code == 302, hint
    assert any("refunded" in line for line in _successes(response)), hint


def test_every_till_hint_of_the_demo_works_as_printed(client, demo_output):
    hints = _till_hints(demo_output)
    assert len(hints) >= 6, hints
    assert client.login(username=CLERK[0], password=CLERK[1])
    card = None
    followed = []
    for hint in hints:
        if hint.startswith("Look up"):
            card = _follow_lookup(client, hint)
        elif hint.startswith("Record a purchase"):
            _follow_purchase(client, hint, card)
        elif hint.startswith(("Shared code", "Unique code")):
            _follow_code(client, hint)
        elif hint.startswith("Spend"):
            _follow_points(client, hint)
        elif hint.startswith("Refund"):
            _follow_refund(client, hint)
        else:
            pytest.fail(f"a hint this test does not know how to follow: {hint}")
        followed.append(hint.split()[0])
    assert followed == ["Look", "Record", "Shared", "Unique", "Spend", "Refund"]


def test_the_shared_code_hint_names_someone_who_has_not_used_it(demo_output):
    hint = next(line for line in _till_hints(demo_output) if line.startswith("Shared code"))
    card = re.search(r"card (\d{16})", hint).group(1)
    assert not Redemption.objects.filter(account__card_number=card, coupon_code__code="WELCOME10").exists()
    look_up = next(line for line in _till_hints(demo_output) if line.startswith("Look up"))
    assert card not in look_up  # the member who already used it is not the one offered the code
