"""Every write to customers goes through these services; views, admin and tasks only call them."""

from customers.services.consent import (
    consent_confirm,
    consent_grant,
    consent_state_rebuild,
    consent_withdraw,
    disclosure_publish,
    suppression_add,
    suppression_remove,
)
from customers.services.profiles import (
    CaptureResult,
    ConsentRequest,
    customer_capture,
    customer_erase,
    customer_merge,
    merge_proposal_dismiss,
    purchase_record,
)

__all__ = [
    "CaptureResult",
    "ConsentRequest",
    "consent_confirm",
    "consent_grant",
    "consent_state_rebuild",
    "consent_withdraw",
    "customer_capture",
    "customer_erase",
    "customer_merge",
    "disclosure_publish",
    "merge_proposal_dismiss",
    "purchase_record",
    "suppression_add",
    "suppression_remove",
]
