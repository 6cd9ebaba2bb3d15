"""Switching's REST endpoints: gateways, phones, number transforms, schedules, number pools, system parameters."""
