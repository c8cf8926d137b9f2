from campaigns.models.audit import AuditEvent
from campaigns.models.campaigns import Campaign
from campaigns.models.caps import FrequencyCounter, FrequencyRule
from campaigns.models.devices import CustomerPushDevice
from campaigns.models.messages import Message, Variant
from campaigns.models.segments import Segment, SegmentMember
from campaigns.models.test_recipients import StaffTestRecipient

__all__ = [
    "AuditEvent",
    "Campaign",
    "CustomerPushDevice",
    "FrequencyCounter",
    "FrequencyRule",
    "Message",
    "Segment",
    "SegmentMember",
    "StaffTestRecipient",
    "Variant",
]
