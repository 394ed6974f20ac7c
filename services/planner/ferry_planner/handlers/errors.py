"""The planner's use-case errors; the HTTP API turns each kind into its status code.
Names in their messages are shown escaped and cut short (``shown``), whatever was asked."""

from ferry_shared.api_fields import shown
from ferry_shared.dns1123 import is_dns1123_label
from ferry_shared.errors import PermanentError


class NotFoundError(PermanentError):
    """Something named does not exist (404)."""

    def __init__(self, what: str, name: str, *, message: str = "") -> None:
        super().__init__("not_found", message or f"{what} {shown(name)} does not exist")


class ConflictError(PermanentError):
    """The request clashes with the current state (409); ``code`` says how."""


class AlreadyExistsError(ConflictError):
    def __init__(self, what: str, name: str) -> None:
        super().__init__("already_exists", f"{what} {shown(name)} already exists; delete it first or pick another name")


class InvalidError(PermanentError):
    """The request itself is wrong (422)."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid", message)


def check_name(what: str, name: str) -> None:
    """Refuse a name that is not a DNS-1123 label."""
    if not is_dns1123_label(name):
        raise InvalidError(f"{what} name {shown(name)} must be a DNS-1123 label (lower-case letters, digits, '-')")
