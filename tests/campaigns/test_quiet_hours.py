import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.utils import timezone
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from campaigns.delivery.quiet_hours import (
    Recipient,
    Window,
    local_time_release,
    next_allowed,
    quiet_hours_check,
    recipient_release,
    recipient_zones,
    release_groups,
)
from campaigns.models import QuietHoursRule
from customers.models import Customer
from tests.factories import CustomerFactory, StoreFactory

UTC = dt.UTC
NY, LA, LONDON = "America/New_York", "America/Los_Angeles", "Europe/London"
US_ZONES = (
    "America/Adak",
    "America/Anchorage",
    "America/Boise",
    "America/Chicago",
    "America/Denver",
    "America/Juneau",
    "America/Los_Angeles",
    "America/New_York",
    "America/North_Dakota/Center",
    "America/Phoenix",
    "Pacific/Honolulu",
)
TOLL_FREE = "+18005550123"
MIAMI = "+13055550123"
MANHATTAN = "+12125550123"


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def check_one(customer, channel="sms", category=""):
    """What the chunk would decide for one delivery to ``customer`` at the (travelled) current time."""
    zones = recipient_zones([customer])
    return quiet_hours_check(items=[(1, customer.pk, channel)], zones=zones, now=timezone.now(), category=category)[1]


def in_new_york(**kwargs):
    return CustomerFactory(time_zone=NY, time_zone_source=Customer.TimeZoneSource.EXPLICIT, **kwargs)


# --- rules and windows ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_defaults_are_seeded_sms_only():
    windows = {(r.channel, r.country, r.region): (r.start, r.end) for r in QuietHoursRule.objects.all()}
    assert windows[("sms", "", "")] == (dt.time(8), dt.time(21))
    assert windows[("sms", "US", "FL")] == (dt.time(8), dt.time(20))
    assert not QuietHoursRule.objects.exclude(channel="sms").exists()


@pytest.mark.django_db
def test_sms_at_seven_fifty_nine_local_waits_for_eight_local():
    customer = in_new_york()
    with time_machine.travel(utc(2026, 6, 10, 11, 59), tick=False):  # 07:59 EDT
        assert check_one(customer) == utc(2026, 6, 10, 12, 0)
    with time_machine.travel(utc(2026, 6, 10, 12, 0), tick=False):  # 08:00 EDT
        assert check_one(customer) is None


@pytest.mark.django_db
def test_sms_at_nine_pm_waits_for_eight_next_morning():
    customer = in_new_york(phone=MANHATTAN)
    with time_machine.travel(utc(2026, 6, 10, 0, 59), tick=False):  # 20:59 EDT on the 9th
        assert check_one(customer) is None
    with time_machine.travel(utc(2026, 6, 11, 1, 0), tick=False):  # 21:00 EDT on the 10th
        assert check_one(customer) == utc(2026, 6, 11, 12, 0)


@pytest.mark.django_db
def test_florida_customers_stop_at_eight_pm_others_at_nine():
    florida = in_new_york(home_store=StoreFactory(state="FL", time_zone=NY))
    by_phone = CustomerFactory(phone=MIAMI, time_zone=NY, time_zone_source=Customer.TimeZoneSource.PHONE)
    new_york = in_new_york(phone=MANHATTAN)
    with time_machine.travel(utc(2026, 6, 11, 0, 30), tick=False):  # 20:30 EDT
        assert check_one(florida) == utc(2026, 6, 11, 12, 0)
        assert check_one(by_phone) == utc(2026, 6, 11, 12, 0)
        assert check_one(new_york) is None


@pytest.mark.django_db
def test_a_customer_whose_region_is_unknown_gets_the_narrowest_window_of_the_country():
    # toll-free number, explicit zone: the US is known, the state is not, Florida may apply
    customer = CustomerFactory(phone=TOLL_FREE, time_zone=NY, time_zone_source=Customer.TimeZoneSource.EXPLICIT)
    with time_machine.travel(utc(2026, 6, 11, 0, 30), tick=False):  # 20:30 EDT
        assert check_one(customer) == utc(2026, 6, 11, 12, 0)


@pytest.mark.django_db
def test_email_and_push_are_not_restricted_by_default():
    customer = in_new_york()
    with time_machine.travel(utc(2026, 6, 10, 7, 0), tick=False):  # 03:00 EDT
        assert check_one(customer, "email") is None
        assert check_one(customer, "push") is None
        assert check_one(customer, "sms") == utc(2026, 6, 10, 12, 0)


@pytest.mark.django_db
def test_a_category_rule_applies_only_to_its_category():
    QuietHoursRule.objects.create(channel="email", category="promotional", start=dt.time(9), end=dt.time(18))
    customer = in_new_york()
    with time_machine.travel(utc(2026, 6, 10, 12, 0), tick=False):  # 08:00 EDT
        assert check_one(customer, "email", "promotional") == utc(2026, 6, 10, 13, 0)
        assert check_one(customer, "email", "transactional") is None


# --- DST ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("now", "deferred_to"),
    [
        # New York springs forward on 2026-03-08 at 02:00 EST (07:00 UTC): 08:00 is then 12:00 UTC
        (utc(2026, 3, 8, 2, 0), utc(2026, 3, 8, 12, 0)),  # 21:00 EST the evening before
        (utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 12, 0)),  # 01:30 EST, before the gap
        (utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 12, 0)),  # 03:30 EDT, after it
        # and falls back on 2026-11-01 at 02:00 EDT (06:00 UTC): 08:00 is then 13:00 UTC
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 13, 0)),  # 01:30 EDT, first pass
        (utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 13, 0)),  # 01:30 EST, second pass
        (utc(2026, 11, 2, 2, 0), utc(2026, 11, 2, 13, 0)),  # 21:00 EST
    ],
)
def test_new_york_deferrals_across_dst(now, deferred_to):
    customer = in_new_york()
    with time_machine.travel(now, tick=False):
        assert check_one(customer) == deferred_to


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("now", "deferred_to"),
    [
        # London springs forward on 2026-03-29 at 01:00 GMT; falls back on 2026-10-25 at 02:00 BST (01:00 UTC)
        (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 7, 0)),
        (utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 7, 0)),
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 8, 0)),
        (utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 8, 0)),  # 21:00 BST
    ],
)
def test_london_deferrals_across_dst(now, deferred_to):
    customer = CustomerFactory(time_zone=LONDON, time_zone_source=Customer.TimeZoneSource.EXPLICIT)
    with time_machine.travel(now, tick=False):
        assert check_one(customer) == deferred_to


def test_a_window_opening_inside_a_spring_forward_gap_opens_at_the_first_minute_after_it():
    # 02:30 does not exist in New York on 2026-03-08: 03:00 EDT (07:00 UTC) is the first allowed minute
    found, everywhere = next_allowed((NY,), Window(150, 300), utc(2026, 3, 8, 6, 0))
    assert (found, everywhere) == (utc(2026, 3, 8, 7, 0), True)


def test_a_wall_time_repeated_by_fall_back_is_allowed_in_its_second_pass_too():
    # 01:00-01:30 happens twice in New York on 2026-11-01; at 01:45 EDT the next allowed minute is 01:00 EST
    found, _ = next_allowed((NY,), Window(60, 90), utc(2026, 11, 1, 5, 45))
    assert found == utc(2026, 11, 1, 6, 0)


@pytest.mark.parametrize(
    ("local", "zone", "instant"),
    [
        (dt.datetime(2026, 3, 8, 10, 0), NY, utc(2026, 3, 8, 14, 0)),
        (dt.datetime(2026, 3, 8, 2, 30), NY, utc(2026, 3, 8, 7, 0)),  # in the gap: 03:00 EDT
        (dt.datetime(2026, 11, 1, 1, 30), NY, utc(2026, 11, 1, 5, 30)),  # repeated: the first, EDT
        (dt.datetime(2026, 11, 1, 10, 0), NY, utc(2026, 11, 1, 15, 0)),
        (dt.datetime(2026, 3, 29, 1, 30), LONDON, utc(2026, 3, 29, 1, 0)),  # in the gap: 02:00 BST
        (dt.datetime(2026, 10, 25, 1, 30), LONDON, utc(2026, 10, 25, 0, 30)),  # repeated: the first, BST
        (dt.datetime(2026, 10, 25, 10, 0), LONDON, utc(2026, 10, 25, 10, 0)),
    ],
)
def test_local_time_release_is_dst_correct(local, zone, instant):
    assert local_time_release(local_dt=local, zones=[zone]) == {zone: instant}


def test_local_time_release_refuses_aware_times_and_unknown_zones():
    with pytest.raises(ValueError, match="wall time"):
        local_time_release(local_dt=utc(2026, 1, 1, 10, 0), zones=[NY])
    with pytest.raises(ValueError, match="IANA"):
        local_time_release(local_dt=dt.datetime(2026, 1, 1, 10, 0), zones=["Mars/Base"])


def test_an_unknown_zone_customer_is_released_at_the_latest_of_its_candidates():
    zones = {1: Recipient(zones=(NY,), known=True), 2: Recipient(zones=(NY, LA), known=False)}
    local = dt.datetime(2026, 6, 10, 10, 0)
    assert recipient_release(local_dt=local, zones=zones) == {1: utc(2026, 6, 10, 14, 0), 2: utc(2026, 6, 10, 17, 0)}
    assert release_groups(local_dt=local, zones=zones) == {utc(2026, 6, 10, 14, 0): [1], utc(2026, 6, 10, 17, 0): [2]}


# --- unknown zones ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_us_number_without_a_zone_is_held_to_every_us_zone():
    # given a toll-free US number and the "default" source, whose stored zone is not the customer's
    customer = CustomerFactory(
        phone=TOLL_FREE, time_zone="Europe/Paris", time_zone_source=Customer.TimeZoneSource.DEFAULT
    )
    recipient = recipient_zones([customer])[customer.pk]
    assert recipient.zones == US_ZONES
    assert not recipient.known
    # then in July SMS is allowed from 08:00 in Honolulu (18:00 UTC, 14:00 EDT) to 20:00 in New York
    # (00:00 UTC; the state is unknown, so Florida's 20:00 holds): the intersection, never early anywhere
    with time_machine.travel(utc(2026, 7, 1, 13, 0), tick=False):  # 09:00 EDT, 03:00 HST
        assert check_one(customer) == utc(2026, 7, 1, 18, 0)
    with time_machine.travel(utc(2026, 7, 1, 23, 59), tick=False):
        assert check_one(customer) is None
    with time_machine.travel(utc(2026, 7, 2, 0, 0), tick=False):  # 20:00 EDT
        assert check_one(customer) == utc(2026, 7, 2, 18, 0)
    # and in January New York is on EST: the window closes at 01:00 UTC
    with time_machine.travel(utc(2026, 1, 15, 0, 59), tick=False):
        assert check_one(customer) is None
    with time_machine.travel(utc(2026, 1, 15, 1, 0), tick=False):
        assert check_one(customer) == utc(2026, 1, 15, 18, 0)


@pytest.mark.django_db
def test_without_phone_or_store_the_retailers_store_zones_are_the_candidates():
    StoreFactory(time_zone=NY), StoreFactory(time_zone=LA), StoreFactory(time_zone="Europe/Paris", is_active=False)
    customer = CustomerFactory(time_zone="", time_zone_source=Customer.TimeZoneSource.DEFAULT)
    assert recipient_zones([customer])[customer.pk] == Recipient(zones=(LA, NY), known=False)


@pytest.mark.django_db
def test_without_any_store_the_default_regions_zones_are_the_candidates(settings):
    settings.TANDEM = {**settings.TANDEM, "DEFAULT_PHONE_REGION": "GB"}
    customer = CustomerFactory(time_zone="", time_zone_source=Customer.TimeZoneSource.DEFAULT)
    assert recipient_zones([customer])[customer.pk].zones == (LONDON,)


@pytest.mark.django_db
def test_known_zones_come_from_the_explicit_store_or_phone_source():
    store = StoreFactory(time_zone=LA, state="CA")
    explicit = CustomerFactory(time_zone=NY, time_zone_source=Customer.TimeZoneSource.EXPLICIT)
    from_store = CustomerFactory(home_store=store, time_zone=LA, time_zone_source=Customer.TimeZoneSource.STORE)
    by_phone = CustomerFactory(phone=MANHATTAN, time_zone=NY, time_zone_source=Customer.TimeZoneSource.PHONE)
    found = recipient_zones([explicit, from_store, by_phone])
    assert found[explicit.pk].zones == (NY,)
    assert found[from_store.pk] == Recipient(zones=(LA,), known=True, areas=frozenset({("US", "CA")}))
    assert found[by_phone.pk] == Recipient(zones=(NY,), known=True, areas=frozenset({("US", "NY")}))


def test_days_without_a_shared_minute_are_skipped_to_the_next_day_that_has_one():
    # 08:00-13:00 in London and New York share no minute while both are on winter (or summer) time; in the
    # weeks when only New York has sprung forward (from 2026-03-08) they share 12:00-13:00 UTC
    found, everywhere = next_allowed((LONDON, NY), Window(480, 780), utc(2026, 3, 2, 0, 0))
    assert (found, everywhere) == (utc(2026, 3, 8, 12, 0), True)


def test_zones_that_never_share_a_minute_fall_back_to_the_widest_coverage():
    # 09:00-10:00 in Paris and in Sydney never overlap: the earliest minute allowed in one of them is used
    found, everywhere = next_allowed(("Europe/Paris", "Australia/Sydney"), Window(540, 600), utc(2026, 6, 10, 0, 0))
    assert (found, everywhere) == (utc(2026, 6, 10, 7, 0), False)  # 09:00 CEST; Sydney's 09:00 was 23:00 UTC


def test_unknown_input_is_refused():
    with pytest.raises(ValueError, match="aware"):
        quiet_hours_check(items=[], zones={}, now=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="No zones"):
        quiet_hours_check(items=[(1, 99, "sms")], zones={}, now=utc(2026, 1, 1))


# --- a chunk ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_chunk_of_a_thousand_costs_a_bounded_number_of_queries(django_assert_max_num_queries):
    stores = [StoreFactory(time_zone=zone, state=state) for zone, state in ((NY, "FL"), (LA, "CA"), (NY, "NY"))]
    phones = [TOLL_FREE, MIAMI, MANHATTAN, "+14155550123", None]
    rows = []
    for n in range(1000):
        phone = phones[n % 5]
        rows.append(
            Customer(
                email=f"c{n}@example.com",
                phone=None if phone is None else f"{phone[:-4]}{n:04d}",
                home_store=stores[n % 3] if n % 4 == 0 else None,
                time_zone=NY if n % 4 == 0 else "",
                time_zone_source=Customer.TimeZoneSource.STORE if n % 4 == 0 else Customer.TimeZoneSource.DEFAULT,
                source="web",
            )
        )
    Customer.objects.bulk_create(rows)
    customers = list(Customer.objects.all())
    items = [(c.pk, c.pk, ("sms", "email")[c.pk % 2]) for c in customers]
    with django_assert_max_num_queries(3):
        zones = recipient_zones(customers)
        decided = quiet_hours_check(items=items, zones=zones, now=utc(2026, 6, 10, 11, 0))
    assert len(decided) == 1000
    assert {decided[pk] for pk, _, channel in items if channel == "email"} == {None}
    assert all(decided[pk] is not None for pk, _, channel in items if channel == "sms")  # 07:00 EDT


# --- properties ---------------------------------------------------------------------------------------

ZONES = [NY, LA, LONDON, "Europe/Paris", "Australia/Sydney", "Asia/Kolkata", "Pacific/Honolulu", "America/St_Johns"]
TRANSITIONS = [  # New York, London and Sydney changing their clocks in 2026
    utc(2026, 3, 8, 7, 0),
    utc(2026, 11, 1, 6, 0),
    utc(2026, 3, 29, 1, 0),
    utc(2026, 10, 25, 1, 0),
    utc(2026, 4, 4, 16, 0),
    utc(2026, 10, 3, 16, 0),
]
instants = st.one_of(
    st.datetimes(min_value=dt.datetime(2001, 1, 1), max_value=dt.datetime(2037, 12, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    st.builds(
        lambda at, seconds: at + dt.timedelta(seconds=seconds),
        st.sampled_from(TRANSITIONS),
        st.integers(-36 * 3600, 36 * 3600),
    ),
)
windows = st.tuples(st.integers(0, 1438), st.integers(1, 1439)).filter(lambda w: w[0] < w[1]).map(lambda w: Window(*w))


def allowed(instant, zones, window):
    """Independent of the code under test: read the wall clock in each zone."""
    for name in zones:
        local = instant.astimezone(zoneinfo.ZoneInfo(name))
        minutes = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 60e6
        if not window.start <= minutes < window.end:
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(now=instants, zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True), window=windows)
def test_a_deferral_is_the_earliest_allowed_minute_never_before_now(now, zones, window):
    found, everywhere = next_allowed(tuple(zones), window, now)
    assume(everywhere)
    assert found >= now
    assert allowed(found, zones, window)
    if found > now:
        assert (found.second, found.microsecond) == (0, 0)
        assert not allowed(now, zones, window)
        before = found - dt.timedelta(minutes=1)
        assert before < now or not allowed(before, zones, window)


@pytest.mark.django_db
def test_a_store_sourced_zone_follows_the_store_as_it_is_now():
    # given a customer whose zone came from a store that has since moved to Chicago time
    store = StoreFactory(time_zone="America/Chicago")
    customer = CustomerFactory(home_store=store, time_zone=NY, time_zone_source=Customer.TimeZoneSource.STORE)
    assert recipient_zones([customer])[customer.pk].zones == ("America/Chicago",)


# --- admin ----------------------------------------------------------------------------------------------


@pytest.fixture
def marketer(client):
    from tests.factories import MarketingUserFactory

    user = MarketingUserFactory()
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_the_rules_are_listed_and_a_window_ending_before_it_starts_is_refused(client, marketer):
    from django.urls import reverse

    listing = client.get(reverse("admin:campaigns_quiethoursrule_changelist"))
    assert listing.status_code == 200
    assert "US-FL: 08:00 to 20:00" in listing.content.decode()
    before = QuietHoursRule.objects.count()
    response = client.post(
        reverse("admin:campaigns_quiethoursrule_add"),
        {"channel": "push", "country": "us", "region": "", "category": "", "start": "21:00", "end": "08:00"},
    )
    assert response.status_code == 200
    assert "must end after it starts" in response.content.decode()
    assert QuietHoursRule.objects.count() == before
    saved = client.post(
        reverse("admin:campaigns_quiethoursrule_add"),
        {"channel": "push", "country": "us", "region": "ny", "category": "", "start": "09:00", "end": "20:00"},
    )
    assert saved.status_code == 302
    assert QuietHoursRule.objects.filter(channel="push", country="US", region="NY").exists()
