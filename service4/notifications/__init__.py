"""Notifications: order events from the orders service, as each user's feed."""
