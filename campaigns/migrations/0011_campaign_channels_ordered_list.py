"""``Campaign.channels`` becomes an ordered JSON list instead of comma-separated text.

A column cannot be cast from "email,sms" to JSON in place, so the list is written to a new column,
the text column dropped, and the new one renamed. Names that are not channels (hand-typed text) and
repeats are dropped; a campaign left with none gets email, as the old default did.
"""

from django.db import migrations, models

import campaigns.models.campaigns

KNOWN = ("email", "sms", "push")


def text_to_list(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    changed = []
    for campaign in Campaign.objects.only("pk", "channels").iterator(chunk_size=2000):
        names = []
        for item in (campaign.channels or "").split(","):
            item = item.strip().lower()
            if item in KNOWN and item not in names:
                names.append(item)
        campaign.channel_order = names or ["email"]
        changed.append(campaign)
    Campaign.objects.bulk_update(changed, ["channel_order"], batch_size=2000)


def list_to_text(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    changed = []
    for campaign in Campaign.objects.only("pk", "channel_order").iterator(chunk_size=2000):
        campaign.channels = ",".join(campaign.channel_order or ["email"])
        changed.append(campaign)
    Campaign.objects.bulk_update(changed, ["channels"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0010_customer_web_push_device")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="channel_order",
            field=models.JSONField(default=campaigns.models.campaigns.default_channels),
        ),
        migrations.RunPython(text_to_list, list_to_text),
        migrations.RemoveField(model_name="campaign", name="channels"),
        migrations.RenameField(model_name="campaign", old_name="channel_order", new_name="channels"),
        migrations.AlterField(
            model_name="campaign",
            name="channels",
            field=models.JSONField(
                default=campaigns.models.campaigns.default_channels,
                help_text='Channel names in order of preference, e.g. ["email", "sms"].',
            ),
        ),
    ]
