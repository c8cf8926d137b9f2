from django.db import migrations

DEFAULT_RULES = [
    {"name": "At most 1 SMS a day", "channel": "sms", "window": "calendar_day", "limit": 1},
    {"name": "At most 3 marketing emails in 7 days", "channel": "email", "window": "rolling_days", "limit": 3, "days": 7},
    {"name": "At most 5 messages a week, all channels", "channel": "", "window": "calendar_week", "limit": 5},
    {"name": "The customer's own weekly limit", "channel": "", "window": "rolling_days", "days": 7, "limit_source": "customer"},
]


def add_default_rules(apps, schema_editor):
    FrequencyRule = apps.get_model("campaigns", "FrequencyRule")
    if FrequencyRule.objects.exists():
        return
    for values in DEFAULT_RULES:
        FrequencyRule.objects.create(**values)


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0007_frequency_caps'),
    ]

    operations = [
        migrations.RunPython(add_default_rules, migrations.RunPython.noop),
    ]
