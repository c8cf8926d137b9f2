from tests.factories.customers import (
    ClerkFactory,
    CustomerFactory,
    DisclosureFactory,
    MarketingUserFactory,
    PurchaseFactory,
    StoreFactory,
    UserFactory,
)

__all__ = [
    "ClerkFactory",
    "CustomerFactory",
    "DisclosureFactory",
    "MarketingUserFactory",
    "PurchaseFactory",
    "StoreFactory",
    "UserFactory",
]
