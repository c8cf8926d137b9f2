"""The cost of each text: the provider's price, else the price table times the segments; sent through
twilio's real client with only HTTP stubbed."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.costs.pricing import PriceBook, destination_country, sms_cost_make
from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Delivery, SmsCost, SmsPrice
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.factories import CustomerFactory

ACCOUNT = "AC" + "0" * 32
MESSAGES_URL = rf"^https://api\.twilio\.com/2010-04-01/Accounts/{ACCOUNT}/Messages\.json$"
BOOK = PriceBook({"GB": (Decimal("0.0400"), "GBP"), "US": (Decimal("0.0079"), "USD")})


def make(detail=None, *, to="+447700900123", body="Hello", prices=BOOK):
    return sms_cost_make(
        delivery_id=1, cause_type="campaign", cause_id=2, to=to, body=body, detail=detail or {}, prices=prices
    )


def test_the_providers_price_wins_and_is_kept_positive_in_millionths():
    cost = make({"price": "-0.01580", "price_unit": "usd", "num_segments": "2"})
    assert (cost.amount_micros, cost.currency, cost.source, cost.segments) == (15800, "USD", "provider", 2)


def test_without_a_provider_price_the_table_price_of_the_country_times_the_segments():
    cost = make({"price": None, "price_unit": "USD", "num_segments": "3"})
    assert (cost.country, cost.amount_micros, cost.currency, cost.source) == ("GB", 120000, "GBP", "price_table")


def test_segments_are_counted_from_the_text_when_the_provider_does_not_say():
    ucs2_two_parts = "✓" * 71  # 71 UCS-2 units: two parts of 67
    cost = make({}, to="+14155550123", body=ucs2_two_parts)
    assert (cost.segments, cost.amount_micros, cost.currency) == (2, 15800, "USD")


def test_a_country_without_a_price_uses_the_catch_all_row_or_stays_unknown():
    assert make(to="+33612345678").amount_micros is None
    assert make(to="+33612345678").source == "unknown"
    book = PriceBook({"": (Decimal("0.05"), "EUR")})
    cost = make(to="+33612345678", prices=book)
    assert (cost.country, cost.amount_micros, cost.currency) == ("FR", 50000, "EUR")


@pytest.mark.parametrize("price", ["", "abc", "NaN", "Infinity"])
def test_a_price_that_is_not_a_number_is_ignored(price):
    assert make({"price": price, "price_unit": "USD"}).source == "price_table"


def test_destination_country():
    assert destination_country("+447700900123") == "GB"
    assert destination_country("+14155550123") == "US"
    assert destination_country("+447700900123") == "GB"  # a drama number: not valid, still British
    assert destination_country("not a number") == ""


@given(st.integers(min_value=1, max_value=10), st.decimals(min_value=0, max_value=1, places=6))
def test_table_cost_is_price_times_segments_exactly(segments, price):
    cost = make({"num_segments": str(segments)}, prices=PriceBook({"GB": (price, "GBP")}))
    assert cost.amount_micros == int(price * segments * 1_000_000)


@pytest.mark.django_db
def test_the_price_book_reads_the_table_once():
    SmsPrice.objects.create(country="GB", price_per_segment=Decimal("0.04"), currency="GBP")
    book = PriceBook()
    assert book.price_for("GB") == (Decimal("0.04"), "GBP")
    assert book.price_for("US") is None


# --- through the send pipeline and twilio's client ------------------------------------------------


@pytest.fixture
def twilio(settings, http_stub):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.TWILIO_AUTH_TOKEN = "test-token"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_FROM_NUMBER = "+14155550100"
    settings.TWILIO_STATUS_CALLBACKS = False
    settings.DELIVERY_OUTBOX_CHANNELS = []
    answers = {}

    def created(seen):
        to = seen.form()["To"][0]
        price, segments = answers.get(to, (None, "1"))
        return 201, {
            "sid": "SM" + to[-6:].rjust(32, "0"),
            "status": "queued",
            "to": to,
            "body": seen.form()["Body"][0],
            "price": price,
            "price_unit": "USD",
            "num_segments": segments,
        }

    http_stub.add("POST", MESSAGES_URL, answer=created)
    http_stub.answers = answers
    return http_stub


@pytest.mark.django_db
def test_each_text_sent_records_its_cost_from_twilios_answer_or_the_table(twilio, django_assert_max_num_queries):
    SmsPrice.objects.create(country="US", price_per_segment=Decimal("0.0079"), currency="USD")
    priced = granted(CustomerFactory(phone="+14155550101"), "sms")  # twilio answers with a price
    counted = granted(CustomerFactory(phone="+14155550102"), "sms")  # price null, 2 segments: the table
    abroad = granted(CustomerFactory(phone="+33612345678"), "sms")  # no price anywhere
    twilio.answers.update({"+14155550101": ("-0.00790", "1"), "+14155550102": (None, "2")})
    campaign = sending_campaign(channels="sms")
    launched = campaign_launch(campaign=campaign)
    first, last = launched.ranges[0][0], launched.ranges[-1][1]

    with django_assert_max_num_queries(40):
        delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=first, last_id=last)

    assert len(twilio.to("/Messages.json")) == 3
    costs = {cost.delivery_id: cost for cost in SmsCost.objects.filter(cause_type="campaign", cause_id=campaign.pk)}
    delivery = dict(Delivery.objects.filter(cause_id=campaign.pk).values_list("customer_id", "id"))
    sent_at = dict(Delivery.objects.filter(cause_id=campaign.pk).values_list("id", "sent_at"))
    expected = {
        priced.pk: (7900, "USD", "provider", 1, "US"),
        counted.pk: (15800, "USD", "price_table", 2, "US"),
        abroad.pk: (None, "", "unknown", 1, "FR"),
    }
    for customer_id, values in expected.items():
        cost = costs[delivery[customer_id]]
        assert (cost.amount_micros, cost.currency, cost.source, cost.segments, cost.country) == values
        assert cost.sent_at == sent_at[delivery[customer_id]]
        # Only the provider's price is final; the others ask Twilio again later.
        assert (cost.settle_after is None) == (cost.source == "provider")

    # A second copy of the task claims nothing and records nothing twice.
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=first, last_id=last)
    assert SmsCost.objects.count() == 3


@pytest.mark.django_db
def test_a_text_twilio_refuses_has_no_cost(twilio, http_stub):
    http_stub.add("POST", MESSAGES_URL, 400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})
    granted(CustomerFactory(phone="+14155550101"), "sms")
    campaign = sending_campaign(channels="sms")
    launched = campaign_launch(campaign=campaign)

    delivery_chunk_send(
        cause_type="campaign", cause_id=campaign.pk, first_id=launched.ranges[0][0], last_id=launched.ranges[-1][1]
    )

    assert Delivery.objects.get(cause_id=campaign.pk).status == "failed"
    assert not SmsCost.objects.exists()


# --- the price table in the admin ------------------------------------------------------------------


@pytest.fixture
def marketer(client):
    from tests.factories import MarketingUserFactory
    from tests.factories.customers import PASSWORD

    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    return user


ADD_PRICE = "/admin/campaigns/smsprice/add/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"country": "gb", "price_per_segment": "0.04", "currency": "GBP"}, "two-letter ISO 3166 code"),
        ({"country": "GB", "price_per_segment": "0.04", "currency": "gbp"}, "three-letter ISO 4217 code"),
        ({"country": "GB", "price_per_segment": "-0.01", "currency": "GBP"}, "greater than or equal to 0"),
    ],
)
def test_the_price_table_refuses_bad_input_and_saves_nothing(client, marketer, form, error):
    response = client.post(ADD_PRICE, form)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not SmsPrice.objects.exists()


@pytest.mark.django_db
def test_staff_keep_one_price_per_country_and_one_for_every_other_country(client, marketer):
    assert client.post(ADD_PRICE, {"country": "GB", "price_per_segment": "0.04", "currency": "GBP"}).status_code == 302
    assert client.post(ADD_PRICE, {"country": "", "price_per_segment": "0.06", "currency": "USD"}).status_code == 302
    again = client.post(ADD_PRICE, {"country": "GB", "price_per_segment": "0.05", "currency": "GBP"})

    assert again.status_code == 200
    assert "already exists" in again.content.decode()
    assert PriceBook().price_for("FR") == (Decimal("0.060000"), "USD")
    assert "Every other country" in client.get("/admin/campaigns/smsprice/").content.decode()
