import factory

from campaigns.models import Campaign, Message, Segment, Variant

SMS_BODY = "Tandem Stores: hi {{ first_name }}, 20% off this weekend. Reply STOP to opt out"


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    rules = factory.LazyFunction(dict)


class PersonaFactory(SegmentFactory):
    is_persona = True
    description = "Busy parents who shop online after 9pm."


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    name = factory.Sequence(lambda n: f"Message {n}")


class EmailVariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    message = factory.SubFactory(MessageFactory)
    channel = "email"
    subject = "Hello {{ first_name }}"
    preheader = "Our spring offers at {{ store_name }}"
    html_body = '<h1 style="color:#333">Hi {{ first_name }}</h1><p>See you at {{ store_name }}.</p>'


class SmsVariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    message = factory.SubFactory(MessageFactory)
    channel = "sms"
    sms_body = SMS_BODY


class PushVariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    message = factory.SubFactory(MessageFactory)
    channel = "push"
    push_title = "Hi {{ first_name }}"
    push_body = "Spring offers are in store now."
    push_url = "https://shop.example.com/spring"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Campaign {n}")
    goal = Campaign.Goal.ENGAGEMENT
    kpi = Campaign.Kpi.CLICK_RATE
    category = Campaign.Category.PROMOTIONAL
    message = factory.SubFactory(MessageFactory)
    channels = factory.LazyFunction(lambda: ["email"])

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        # Tests read better as channels="sms,email"; the model stores the ordered list.
        if isinstance(kwargs.get("channels"), str):
            kwargs["channels"] = [item.strip() for item in kwargs["channels"].split(",") if item.strip()]
        return kwargs

    @factory.post_generation
    def include(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.include_segments.set(extracted)

    @factory.post_generation
    def exclude(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.exclude_segments.set(extracted)
