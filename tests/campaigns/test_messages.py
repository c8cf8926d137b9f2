"""Variants: validation on save, the brand layout, rendering for customers with gaps."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.composer import variant_compiled
from campaigns.rendering import RenderError, TemplateProblem, placeholder_context
from campaigns.selectors import variant_preview
from campaigns.services.messages import variant_save
from campaigns.validation import variant_check
from tests.factories import CustomerFactory, StoreFactory
from tests.factories.campaigns import (
    SMS_BODY,
    EmailVariantFactory,
    MessageFactory,
    PushVariantFactory,
    SmsVariantFactory,
)

pytestmark = pytest.mark.django_db


def test_email_sits_in_the_brand_layout_with_footer_and_inlined_css(settings):
    variant = EmailVariantFactory()
    customer = CustomerFactory(first_name="Ann", home_store=StoreFactory(name="Fifth Avenue"))
    links = {"unsubscribe_url": "https://m.example/u/tok?a=1&b=2", "preferences_url": "https://m.example/p"}
    email = variant_compiled(variant).render(placeholder_context(customer=customer, links=links))
    assert email.subject == "Hello Ann"
    assert email.preheader == "Our spring offers at Fifth Avenue"
    assert "Hi Ann" in email.html
    assert settings.TANDEM["POSTAL_ADDRESS"] in email.html
    assert 'href="https://m.example/u/tok?a=1&amp;b=2"' in email.html
    assert "<style" not in email.html  # inlined
    assert 'class="card" style="' in email.html
    # The plain-text part is generated from the HTML and carries the same footer.
    assert "Hi Ann" in email.text
    assert "Unsubscribe: https://m.example/u/tok?a=1&b=2" in email.text
    assert settings.TANDEM["POSTAL_ADDRESS"] in email.text
    assert "<h1" not in email.text


def test_explicit_text_part_is_kept_and_still_gets_the_footer():
    variant = EmailVariantFactory(text_body="Plain hello {{ first_name }}")
    email = variant_compiled(variant).render(placeholder_context(links={"unsubscribe_url": "https://u"}))
    assert email.text.startswith("Plain hello friend")
    assert "Unsubscribe: https://u" in email.text


def test_marketer_cannot_drop_the_footer_by_closing_the_layout():
    variant = EmailVariantFactory.build(message=MessageFactory(), html_body="<p>Hi</p></div></div></body></html><!--")
    with pytest.raises(ValidationError) as caught:
        variant.full_clean()
    assert "footer" in " ".join(caught.value.message_dict["html_body"])


HIDING_BODIES = [
    "<p>Hi {{ first_name }}</p><!-- draft note",
    "<p>Hi</p><template><p>later",
    "<p>Hi</p><title>Spring",
    "<p>Hi</p><textarea>Tell us",
    "<p>Hi</p><style>p { color: red }",
    '<p>Hi</p><a href="https://shop.example.com/spring>Shop',
    "<p>Hi</p><select><option>S",
    "<p>Hi</p></div><div style=\"display:none\">",
]


@pytest.mark.parametrize("html_body", HIDING_BODIES)
def test_html_that_would_hide_the_footer_is_refused_on_save(html_body):
    variant = EmailVariantFactory.build(message=MessageFactory(), html_body=html_body)
    with pytest.raises(ValidationError) as caught:
        variant.full_clean()
    errors = " ".join(caught.value.message_dict["html_body"])
    assert "footer (unsubscribe link, postal address) would be hidden" in errors


@pytest.mark.parametrize("html_body", HIDING_BODIES)
def test_html_that_would_hide_the_footer_is_refused_at_render_when_stored_anyway(html_body):
    variant = EmailVariantFactory()
    type(variant).objects.filter(pk=variant.pk).update(html_body=html_body)  # past the authoring checks
    variant.refresh_from_db()
    with pytest.raises(TemplateProblem):
        variant_compiled(variant)


def test_a_conditional_that_hides_the_footer_for_some_recipients_is_refused_for_them():
    # Read branch after branch the comment closes, so only the render for each recipient can tell.
    body = "<p>Hi</p>{% if first_name == 'Ann' %}<!--{% endif %}<p>x</p>{% if first_name == 'Zed' %}-->{% endif %}"
    variant = EmailVariantFactory()
    type(variant).objects.filter(pk=variant.pk).update(html_body=body)
    variant.refresh_from_db()
    compiled = variant_compiled(variant)
    links = {"unsubscribe_url": "https://u/x"}
    with pytest.raises(RenderError, match="footer"):
        compiled.render(placeholder_context(customer=CustomerFactory(first_name="Ann"), links=links))
    email = compiled.render(placeholder_context(customer=CustomerFactory(first_name="Bo"), links=links))
    assert "https://u/x" in email.html[email.html.index('class="footer"') :]


def test_a_balanced_conditional_renders_with_the_footer(settings):
    body = "<p>Hi</p>{% if first_name == 'Ann' %}<!-- Ann's note -->{% endif %}<p>Bye</p>"
    variant = EmailVariantFactory(html_body=body)
    variant.full_clean()
    email = variant_compiled(variant).render(
        placeholder_context(customer=CustomerFactory(first_name="Ann"), links={"unsubscribe_url": "https://u/x"})
    )
    footer = email.html[email.html.index('class="footer"') :]
    assert "https://u/x" in footer
    assert settings.TANDEM["POSTAL_ADDRESS"] in footer
    assert "<!--" not in email.html[email.html.index("Bye") :]


def test_preview_for_a_customer_with_missing_fields():
    customer = CustomerFactory(first_name="", last_name="", email=None, phone=None, home_store=None)
    message = MessageFactory()
    for factory in (EmailVariantFactory, SmsVariantFactory, PushVariantFactory):
        preview = variant_preview(variant=factory(message=message), customer=customer)
        assert preview.error == ""
    email = variant_preview(variant=message.variants.get(channel="email"), customer=customer).rendered
    assert email.subject == "Hello friend"
    assert "our stores" in email.preheader
    sms = variant_preview(variant=message.variants.get(channel="sms"), customer=customer).rendered
    assert "hi friend," in sms.body
    assert sms.count.segments == 1
    push = variant_preview(variant=message.variants.get(channel="push"), customer=customer).rendered
    assert push.title == "Hi friend"


def test_preview_without_any_customer_uses_fallbacks():
    preview = variant_preview(variant=EmailVariantFactory(), customer=None)
    assert preview.rendered.subject == "Hello friend"


def test_compiled_once_per_saved_version():
    variant = EmailVariantFactory()
    assert variant_compiled(variant) is variant_compiled(variant)
    variant.subject = "Changed {{ first_name }}"
    variant.save()
    assert variant_compiled(variant).render(placeholder_context()).subject == "Changed friend"


@pytest.mark.parametrize(
    ("field", "value", "message_part"),
    [
        ("subject", "{{ settings.SECRET_KEY }}", "Unknown placeholder"),
        ("html_body", "<p>ok</p>\n{% include '/etc/passwd' %}", "Line 2"),
        ("preheader", "{{ first_name.__class__ }}", "attributes"),
        ("subject", "", "needs a subject"),
    ],
)
def test_email_cell_is_refused_on_save(field, value, message_part):
    variant = EmailVariantFactory.build(message=MessageFactory(), **{field: value})
    with pytest.raises(ValidationError) as caught:
        variant.full_clean()
    assert message_part in " ".join(caught.value.message_dict[field])


def test_marketing_sms_needs_brand_and_stop():
    variant = SmsVariantFactory.build(message=MessageFactory(), sms_body="Hi {{ first_name }}, sale now on!")
    with pytest.raises(ValidationError) as caught:
        variant.full_clean()
    errors = " ".join(caught.value.message_dict["sms_body"])
    assert "brand" in errors
    assert "Reply STOP to opt out" in errors


def test_transactional_sms_needs_neither():
    message = MessageFactory(purpose="transactional")
    variant = SmsVariantFactory.build(message=message, sms_body="Your order is ready, {{ first_name }}.")
    variant.full_clean()


def test_sms_over_one_segment_warns_and_over_the_limit_is_refused(settings):
    message = MessageFactory()
    long_body = SMS_BODY + " " + "Lots more words here. " * 8
    assert "2 segments" in " ".join(variant_check(SmsVariantFactory.build(message=message, sms_body=long_body)))
    settings.TANDEM = {**settings.TANDEM, "SMS_MAX_SEGMENTS": 1}
    with pytest.raises(ValidationError) as caught:
        SmsVariantFactory.build(message=message, sms_body=long_body).full_clean()
    assert "the limit is 1" in " ".join(caught.value.message_dict["sms_body"])


def test_sms_over_the_default_limit_of_four_is_refused():
    body = SMS_BODY + " " + "x" * 600
    with pytest.raises(ValidationError) as caught:
        SmsVariantFactory.build(message=MessageFactory(), sms_body=body).full_clean()
    assert "the limit is 4" in " ".join(caught.value.message_dict["sms_body"])


def test_emoji_in_sms_warns_about_ucs2():
    warnings = variant_check(SmsVariantFactory.build(message=MessageFactory(), sms_body=SMS_BODY + " 🎉"))
    assert any("UCS-2" in warning for warning in warnings)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"push_title": "x" * 66}, "push_title"),
        ({"push_body": "y" * 241}, "push_body"),
        ({"push_url": "javascript:alert(1)"}, "push_url"),
        ({"push_url": "http://insecure.example.com"}, "push_url"),
        ({"push_image_url": "http://img.example.com/a.png"}, "push_image_url"),
        ({"push_title": ""}, "push_title"),
    ],
)
def test_push_cell_limits(changes, field):
    with pytest.raises(ValidationError) as caught:
        PushVariantFactory.build(message=MessageFactory(), **changes).full_clean()
    assert field in caught.value.message_dict


def test_push_accepts_deep_links_and_limits_at_the_edge():
    PushVariantFactory.build(
        message=MessageFactory(), push_title="t" * 65, push_body="b" * 240, push_url="tandem://offers/spring"
    ).full_clean()


def test_variant_save_records_audit_and_returns_warnings(django_user_model):
    from campaigns.models import AuditEvent

    user = django_user_model.objects.create_user("marketer")
    variant = SmsVariantFactory.build(message=MessageFactory(), sms_body=SMS_BODY + " " + "Words. " * 25)
    warnings = variant_save(variant=variant, actor=user)
    assert any("segments" in warning for warning in warnings)
    event = AuditEvent.objects.get(subject_type="variant", subject_id=variant.pk)
    assert event.actor == user
    assert event.action == "created"


def test_a_message_cannot_change_once_its_campaign_is_sending():
    from campaigns.exceptions import CampaignError
    from campaigns.models import Campaign, Variant
    from campaigns.services.messages import variant_delete
    from tests.factories.campaigns import CampaignFactory

    campaign = CampaignFactory()
    variant = EmailVariantFactory(message=campaign.message)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    variant.subject = "Changed"
    with pytest.raises(CampaignError):
        variant_save(variant=variant, actor=None)
    with pytest.raises(CampaignError):
        variant_delete(variant=variant, actor=None)
    assert Variant.objects.get(pk=variant.pk).subject == "Hello {{ first_name }}"


def test_marketing_sms_with_the_opt_out_line_inside_a_conditional_is_refused():
    body = "Tandem Stores: hi {{ first_name }}!{% if first_name == 'Alexandra' %} Reply STOP to opt out{% endif %}"
    variant = SmsVariantFactory.build(message=MessageFactory(), sms_body=body)
    with pytest.raises(ValidationError) as caught:
        variant.full_clean()
    assert "outside {% if %}" in " ".join(caught.value.message_dict["sms_body"])


def test_opt_out_line_next_to_a_conditional_is_accepted():
    body = "Tandem Stores{% if store_name %} at {{ store_name }}{% endif %}: 20% off. Reply STOP to opt out"
    SmsVariantFactory.build(message=MessageFactory(), sms_body=body).full_clean()


@pytest.mark.parametrize(
    "body",
    [
        "Tandem Stores: hi!{% if first_name == 'Alexandra' %} Reply STOP to opt out{% endif %}",
        "{% if first_name == 'Alexandra' %}Tandem Stores: {% endif %}hi! Reply STOP to opt out",
    ],
)
def test_each_rendered_marketing_text_must_keep_brand_and_opt_out(body):
    variant = SmsVariantFactory()
    type(variant).objects.filter(pk=variant.pk).update(sms_body=body)  # past the authoring checks
    variant.refresh_from_db()
    compiled = variant_compiled(variant)
    # The sample recipient of the authoring check gets the whole text ...
    sample = compiled.render(placeholder_context(extra={"first_name": "Alexandra"})).body
    assert "Tandem Stores" in sample
    assert "Reply STOP to opt out" in sample
    # ... a real one does not, and that render is refused.
    with pytest.raises(RenderError):
        compiled.render(placeholder_context(customer=CustomerFactory(first_name="Ann")))


def test_transactional_sms_renders_without_brand_or_opt_out():
    variant = SmsVariantFactory(message=MessageFactory(purpose="transactional"), sms_body="Your order is ready.")
    assert variant_compiled(variant).render(placeholder_context()).body == "Your order is ready."


def test_message_save_records_creation_and_renames():
    from campaigns.models import AuditEvent, Message
    from campaigns.services.messages import message_save

    message = Message(name="Spring")
    message_save(message=message, actor=None)
    message.name = "Spring, again"
    message_save(message=message, actor=None)
    trail = AuditEvent.objects.filter(subject_type="message", subject_id=message.pk).order_by("id")
    assert [(e.action, e.changes) for e in trail] == [("created", {}), ("changed", {"name": "Spring, again"})]


def test_message_save_refuses_once_a_campaign_sends_it_and_changes_nothing():
    from campaigns.exceptions import CampaignError
    from campaigns.models import AuditEvent, Campaign, Message
    from campaigns.services.messages import message_save
    from tests.factories.campaigns import CampaignFactory

    campaign = CampaignFactory()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    message = campaign.message
    message.name = "Renamed while sending"
    with pytest.raises(CampaignError, match="started sending"):
        message_save(message=message, actor=None)
    assert Message.objects.get(pk=message.pk).name != "Renamed while sending"
    assert not AuditEvent.objects.filter(subject_type="message").exists()


def test_variant_save_audits_the_change_against_the_stored_row():
    from campaigns.models import AuditEvent

    variant = EmailVariantFactory(message=MessageFactory())
    variant.subject = "New subject {{ first_name }}"
    variant_save(variant=variant, actor=None)
    event = AuditEvent.objects.filter(subject_type="variant", subject_id=variant.pk).latest("id")
    assert event.changes == {"subject": ["Hello {{ first_name }}", "New subject {{ first_name }}"]}


def test_a_compiled_variant_names_the_placeholders_it_reads():
    email = variant_compiled(EmailVariantFactory())
    # The footer carries both links and the List-Unsubscribe header the first; nothing asks for a survey.
    assert {"unsubscribe_url", "preferences_url", "first_name"} <= email.names
    assert "survey_url" not in email.names
    sms = variant_compiled(SmsVariantFactory(sms_body="Tandem: {{ survey_url }} Reply STOP to opt out"))
    assert sms.names == {"survey_url"}


def test_only_the_links_asked_for_are_signed():
    from campaigns.links import message_links

    customer = CustomerFactory()
    assert set(message_links(customer=customer, channel="sms", names=())) == set()
    assert set(message_links(customer=customer, channel="email", names={"unsubscribe_url"})) == {"unsubscribe_url"}
    every = {"unsubscribe_url", "preferences_url", "survey_url"}
    assert set(message_links(customer=customer, channel="email")) == every
