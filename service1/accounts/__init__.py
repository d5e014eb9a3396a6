"""Accounts: users, their passwords and the bearer tokens the other services check here."""
