"""Billing's REST endpoints: accounts, payments (the only way money moves), rate tables, rates, CDRs."""
