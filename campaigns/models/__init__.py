from campaigns.models.audit import AuditEvent
from campaigns.models.campaigns import Campaign, GoalDashboard
from campaigns.models.caps import FrequencyCounter, FrequencyRule
from campaigns.models.costs import SmsCost, SmsPrice
from campaigns.models.deliveries import Delivery, OutboxMessage
from campaigns.models.devices import CustomerPushDevice, CustomerWebPushDevice
from campaigns.models.feedback import DeliveryEvent, FeedbackCount, SmsOptOutReview
from campaigns.models.journeys import Enrolment, Journey, JourneySegmentMark, JourneyStepRun, JourneyVersion
from campaigns.models.messages import Message, Variant
from campaigns.models.quiet_hours import QuietHoursRule
from campaigns.models.rollups import (
    BuyerDay,
    CampaignFunnelCount,
    CampaignSummary,
    CodeRedemption,
    CohortDay,
    HealthDay,
    JourneyDay,
    JourneySendDay,
    ProfileDay,
    PurchaseDay,
    PurchaseTouch,
    ReachableCount,
    RollupState,
    SendDay,
    SignupDay,
    SurveyDay,
    ValueDay,
)
from campaigns.models.segments import Segment, SegmentMember
from campaigns.models.test_recipients import StaffTestRecipient

__all__ = [
    "AuditEvent",
    "BuyerDay",
    "Campaign",
    "CampaignFunnelCount",
    "CampaignSummary",
    "CodeRedemption",
    "CohortDay",
    "CustomerPushDevice",
    "CustomerWebPushDevice",
    "Delivery",
    "DeliveryEvent",
    "Enrolment",
    "FeedbackCount",
    "FrequencyCounter",
    "FrequencyRule",
    "GoalDashboard",
    "HealthDay",
    "Journey",
    "JourneyDay",
    "JourneySegmentMark",
    "JourneySendDay",
    "JourneyStepRun",
    "JourneyVersion",
    "Message",
    "OutboxMessage",
    "ProfileDay",
    "PurchaseDay",
    "PurchaseTouch",
    "QuietHoursRule",
    "ReachableCount",
    "RollupState",
    "Segment",
    "SegmentMember",
    "SendDay",
    "SignupDay",
    "SmsCost",
    "SmsOptOutReview",
    "SmsPrice",
    "StaffTestRecipient",
    "SurveyDay",
    "ValueDay",
    "Variant",
]
