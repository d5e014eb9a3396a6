"""servicekit: what every service of the stack shares (settings base, request context, health, errors, uWSGI)."""
