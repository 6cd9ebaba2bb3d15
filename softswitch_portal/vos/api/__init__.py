"""The VOS API access rules as REST endpoints."""
