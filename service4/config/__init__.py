"""Django project of service4 (notifications)."""
