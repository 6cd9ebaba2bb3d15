"""Billing pages, a module per kind: accounts, payments, rates, cdrs, reports, rerating, dead_letters and
balance_history."""
