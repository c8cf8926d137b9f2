"""Every loyalty write goes through these services; views, admin and tasks only call them."""

from loyalty.services.account_status import account_status_change
from loyalty.services.accounts import (
    account_enrol,
    account_for_customer,
    points_adjust,
    points_expire_account,
    points_expire_due,
    points_expiring,
)
from loyalty.services.earning import (
    EarnResult,
    RefundResult,
    purchase_earn,
    purchase_refund,
    purchase_refund_reverse,
    till_purchase_record,
    till_purchase_refund,
)
from loyalty.services.lifecycle import accounts_erase, accounts_merge
from loyalty.services.redemptions import (
    CouponPreview,
    coupon_code_create,
    coupon_codes_generate,
    coupon_preview,
    coupon_redeem,
    points_redeem,
    redemption_cancel,
)
from loyalty.services.tiers import tier_review_account, tiers_review_due

__all__ = [
    "CouponPreview",
    "EarnResult",
    "RefundResult",
    "account_enrol",
    "account_for_customer",
    "account_status_change",
    "accounts_erase",
    "accounts_merge",
    "coupon_code_create",
    "coupon_codes_generate",
    "coupon_preview",
    "coupon_redeem",
    "points_adjust",
    "points_expire_account",
    "points_expire_due",
    "points_expiring",
    "points_redeem",
    "purchase_earn",
    "purchase_refund",
    "purchase_refund_reverse",
    "redemption_cancel",
    "tier_review_account",
    "tiers_review_due",
    "till_purchase_record",
    "till_purchase_refund",
]
