"""Django project of service2 (catalog)."""
