"""The actions of the VOS3000-compatible API, by name, each with the API-client scope it needs."""

from dataclasses import dataclass

from security.api_clients import APIScope


@dataclass(frozen=True)
class Action:
    name: str
    handler: object
    scope: str


ACTIONS: dict[str, Action] = {}


def action(name, scope=APIScope.READ):
    """Declare ``handler(call, body) -> dict`` as the action ``name``; ``call`` says who calls (views.Call)."""

    def register(handler):
        ACTIONS[name] = Action(name, handler, scope)
        return handler

    return register
