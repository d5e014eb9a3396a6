"""Catalog: products with price and stock, and the stock reservations orders hold."""
