"""retCode values. The manual defines 0 (success) and -10007 only; the rest are this switch's, in VOS's range.

Every failure also carries ``exception``: a sentence naming the field or
object at fault, which is what a script's log should show.
"""

import enum


class RetCode(enum.IntEnum):
    SUCCESS = 0
    ACCESS_DENIED = -10001  # the source address or token may not call this action
    UNKNOWN_ACTION = -10002
    BAD_REQUEST = -10003  # the body is not a JSON object
    INVALID_FIELD = -10004  # a field is missing, of the wrong type, or refused by the model's validation
    ALREADY_EXISTS = -10005
    IN_USE = -10006  # delete refused: other objects still use it
    NOT_FOUND = -10007  # the manual's own: "Not found, operation failed."
    NOT_SUPPORTED = -10008  # the switch has no counterpart for what was asked
    UNAVAILABLE = -10009  # a part it depends on (Redis) did not answer
    THROTTLED = -10010


class VosError(Exception):
    """Ends an action with ``retCode`` and ``exception``."""

    def __init__(self, code: RetCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(what: str) -> VosError:
    return VosError(RetCode.NOT_FOUND, f"Not found, operation failed: {what}.")


def invalid(field: str, why: str) -> VosError:
    return VosError(RetCode.INVALID_FIELD, f"{field}: {why}")
