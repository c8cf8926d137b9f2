"""What messages cost: SMS priced from the provider's answer or the staff's price table."""
