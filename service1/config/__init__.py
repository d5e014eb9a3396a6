"""Django project of service1 (accounts)."""
