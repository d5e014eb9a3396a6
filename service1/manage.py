#!/usr/bin/env python
"""Django's command line for service1."""

from servicekit.manage import main

if __name__ == "__main__":
    main()
