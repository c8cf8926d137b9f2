"""What comes back after a send: provider webhooks, replies, and what they change (consent, suppression, health).

Every report is stored once as a ``DeliveryEvent`` (unique per provider event id) in the same
transaction as its effects, so a replayed webhook changes nothing.
"""
