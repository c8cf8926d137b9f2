"""Tracking webhook bodies in each ESP's real format (as anymail's docs and the ESPs document them).

Each builder takes what happened (``delivered``, ``hard_bounce``, ``soft_bounce``, ``complaint``,
``unsubscribe``, ``open``, ``click``), the recipient, the delivery id our metadata carried and a number
that makes the event's id, and returns ``(path, body, content_type, headers)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

MAILGUN_SIGNING_KEY = "mailgun-signing-key"
TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z
ISO = "2026-01-01T00:00:00.000Z"
CLICKED_URL = "https://shop.example.com/spring?utm_source=mail"


def sendgrid(what: str, email: str, delivery_id, n: int):
    event = {
        "email": email,
        "timestamp": TIMESTAMP + n,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "sg_event_id": f"sg-event-{n}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "category": ["campaign"],
        "delivery_id": str(delivery_id),  # custom_args arrive as top-level fields
    }
    event.update(
        {
            "delivered": {"event": "delivered", "response": "250 OK"},
            "hard_bounce": {
                "event": "bounce",
                "type": "bounce",
                "status": "5.1.1",
                "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            },
            "soft_bounce": {"event": "bounce", "type": "blocked", "status": "4.0.0", "reason": "421 try later"},
            "complaint": {"event": "spamreport"},
            "unsubscribe": {"event": "unsubscribe"},
            "open": {"event": "open", "useragent": "Mozilla/5.0", "ip": "192.0.2.1"},
            "click": {"event": "click", "url": CLICKED_URL, "useragent": "Mozilla/5.0", "ip": "192.0.2.1"},
        }[what]
    )
    return "/anymail/sendgrid/tracking/", json.dumps([event]), "application/json", {}


def mailgun(what: str, email: str, delivery_id, n: int, *, key: str = MAILGUN_SIGNING_KEY):
    token = f"{n:050x}"
    timestamp = str(TIMESTAMP + n)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    data = {
        "id": f"mg-{n}",
        "timestamp": TIMESTAMP + n + 0.153125,
        "recipient": email,
        "tags": ["campaign"],
        "user-variables": {"delivery_id": str(delivery_id)},
        "message": {"headers": {"message-id": "20260101000000.1.ABCDEF@mg.example.com", "to": email}},
    }
    data.update(
        {
            "delivered": {
                "event": "delivered",
                "delivery-status": {"code": 250, "message": "OK", "description": ""},
            },
            "hard_bounce": {
                "event": "failed",
                "severity": "permanent",
                "reason": "bounce",
                "delivery-status": {"code": 550, "message": "5.1.1 No such user", "description": ""},
            },
            "soft_bounce": {
                "event": "failed",
                "severity": "temporary",
                "reason": "generic",
                "delivery-status": {"code": 452, "message": "4.2.2 Mailbox full", "description": ""},
            },
            "complaint": {"event": "complained"},
            "unsubscribe": {"event": "unsubscribed"},
            "open": {"event": "opened", "client-info": {"user-agent": "Mozilla/5.0"}},
            "click": {"event": "clicked", "url": CLICKED_URL, "client-info": {"user-agent": "Mozilla/5.0"}},
        }[what]
    )
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": data}
    return "/anymail/mailgun/tracking/", json.dumps(body), "application/json", {}


def postmark(what: str, email: str, delivery_id, n: int):
    common = {
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "Tag": "campaign",
        "Metadata": {"delivery_id": str(delivery_id)},
    }
    bounce = {
        "RecordType": "Bounce",
        "ID": 4323372036854775000 + n,
        "TypeCode": 1,
        "Email": email,
        "From": "news@tandem.example",
        "BouncedAt": ISO,
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Spring sale",
    }
    event = {
        "delivered": {"RecordType": "Delivery", "Recipient": email, "DeliveredAt": ISO, "Details": "250 OK"},
        "hard_bounce": {**bounce, "Type": "HardBounce", "Name": "Hard bounce", "Description": "Unknown user."},
        "soft_bounce": {
            **bounce,
            "Type": "SoftBounce",
            "TypeCode": 4096,
            "Name": "Soft bounce",
            "Description": "Mailbox full.",
            "Inactive": False,
        },
        "complaint": {**bounce, "RecordType": "SpamComplaint", "Type": "SpamComplaint", "TypeCode": 512},
        "unsubscribe": {
            "RecordType": "SubscriptionChange",
            "Recipient": email,
            "ChangedAt": ISO,
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
        },
        "open": {
            "RecordType": "Open",
            "Recipient": email,
            "ReceivedAt": f"2026-01-01T00:{n % 60:02d}:00Z",
            "FirstOpen": True,
            "Platform": "WebMail",
            "UserAgent": "Mozilla/5.0",
        },
        "click": {
            "RecordType": "Click",
            "Recipient": email,
            "ReceivedAt": f"2026-01-01T00:{n % 60:02d}:00Z",
            "OriginalLink": CLICKED_URL,
            "ClickLocation": "HTML",
            "Platform": "Desktop",
            "UserAgent": "Mozilla/5.0",
        },
    }[what]
    return "/anymail/postmark/tracking/", json.dumps({**common, **event}), "application/json", {}


def _sns(message: str, n: int, message_type: str = "Notification", **extra):
    message_id = f"19ba9823-d7f2-53c1-860e-{n:012d}"
    body = {
        "Type": message_type,
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:111111111111:SES_Tracking",
        "Message": message,
        "Timestamp": "2026-01-01T00:00:00.675Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+...",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        **extra,
    }
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": message_type, "HTTP_X_AMZ_SNS_MESSAGE_ID": message_id}
    return "/anymail/amazon_ses/tracking/", json.dumps(body), "text/plain; charset=UTF-8", headers


def amazon_ses(what: str, email: str, delivery_id, n: int):
    mail = {
        "timestamp": "2026-01-01T00:00:00.000Z",
        "source": "news@tandem.example",
        "sendingAccountId": "111111111111",
        "messageId": "0100016263c8c0ad-41a3b2a5-0000-0000-0000-000000000000-000000",
        "destination": [email],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "news@tandem.example"},
            {"name": "To", "value": email},
            {"name": "X-Metadata", "value": json.dumps({"delivery_id": str(delivery_id)})},
        ],
        "tags": {"ses:configuration-set": ["marketing"]},
    }
    bounce = {
        "bounceSubType": "General",
        "bouncedRecipients": [
            {"emailAddress": email, "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 no"}
        ],
        "timestamp": ISO,
        "feedbackId": "0100016263c8c20f-feedback",
    }
    event = {
        "delivered": {
            "eventType": "Delivery",
            "delivery": {"timestamp": ISO, "recipients": [email], "smtpResponse": "250 2.6.0 Message received"},
        },
        "hard_bounce": {"eventType": "Bounce", "bounce": {**bounce, "bounceType": "Permanent"}},
        "soft_bounce": {"eventType": "Bounce", "bounce": {**bounce, "bounceType": "Transient"}},
        "complaint": {
            "eventType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": email}],
                "timestamp": ISO,
                "feedbackId": "0100016263c8c20f-complaint",
                "complaintFeedbackType": "abuse",
            },
        },
        "open": {"eventType": "Open", "open": {"ipAddress": "192.0.2.1", "timestamp": ISO, "userAgent": "Mozilla/5.0"}},
        "click": {
            "eventType": "Click",
            "click": {"ipAddress": "192.0.2.1", "link": CLICKED_URL, "timestamp": ISO, "userAgent": "Mozilla/5.0"},
        },
    }[what]
    return _sns(json.dumps({**event, "mail": mail}), n)


def amazon_sns_subscription_confirmation(n: int):
    return _sns(
        "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:111111111111:SES_Tracking.",
        n,
        message_type="SubscriptionConfirmation",
        Token="2336412f37-confirmation-token",
        SubscribeURL="https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37",
    )


ESPS = {"sendgrid": sendgrid, "mailgun": mailgun, "postmark": postmark, "amazon_ses": amazon_ses}
# Amazon SES reports subscription unsubscribes only as events anymail cannot name.
UNSUPPORTED = {("amazon_ses", "unsubscribe")}
