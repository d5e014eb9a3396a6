"""Orders: placing and cancelling orders, which reserve stock at the catalog and tell notifications."""
