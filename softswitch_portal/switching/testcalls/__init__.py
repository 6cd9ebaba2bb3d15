"""Operator test calls: a real SIP user agent with audio (pjsua2) dialling through the switch (``agent``), and
what its recording tells (``audio``)."""
