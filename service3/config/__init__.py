"""Django project of service3 (orders)."""
