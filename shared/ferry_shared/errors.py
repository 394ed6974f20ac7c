"""The two kinds of handler failure, decided where the cause is known.

A :class:`TemporaryError` asks for the message again after a delay (nak with delay);
a :class:`PermanentError` ends it (term) and publishes a ``MessageFailed`` event.
"""


class FerryError(Exception):
    """Base of Ferry's own errors: a machine-readable code and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PermanentError(FerryError):
    """Retrying cannot help (bad input, missing object, refused credentials)."""


class TemporaryError(FerryError):
    """Retrying later may help (peer unreachable, resource busy)."""

    def __init__(self, code: str, message: str, *, delay: float = 5.0) -> None:
        super().__init__(code, message)
        self.delay = delay
