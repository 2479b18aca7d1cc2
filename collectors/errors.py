"""The one exception tree of `collectors`: everything a device can do wrong, rooted at MinerError.

    MinerError
    ├── MinerConnectionError          the TCP conversation failed (unreachable host, DNS, OS error)
    │   ├── MinerConnectionRefusedError   nothing listens on the port
    │   ├── MinerConnectionResetError     the peer reset or closed before a full reply
    │   └── MinerTimeoutError             a connect or read deadline passed
    ├── MinerProtocolError            bytes we could not understand (names the start of the bytes)
    │   ├── MinerReplyTooLargeError       the reply outgrew the size cap before its end
    │   └── MinerEmptyReplyError          the device closed (or sent only a NUL) without replying
    ├── MinerAPIError                 the device answered STATUS=E/F (or a v3 non-zero code)
    └── MinerAuthError                the device refused our credentials (web CGI, API v3)

Foreign exceptions are translated into this tree at exactly one place per foreign library, always with
`raise ... from exc`: sockets and asyncio in `connection.py`, `json` in `framing.py`, httpx in `web.py`.
No exception carries a credential.
"""

from __future__ import annotations

PREVIEW_BYTES = 60


def preview(data: bytes | str, limit: int = PREVIEW_BYTES) -> str:
    """The start of a reply, printable and short, for error messages (`repr` of the first bytes)."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    head = raw[:limit]
    suffix = "..." if len(raw) > limit else ""
    return repr(head) + suffix


class MinerError(Exception):
    """Root of every error raised while talking to a device."""

    code: str = "miner_error"


class MinerConnectionError(MinerError):
    """The TCP conversation with the device failed."""

    code = "connection_failed"


class MinerConnectionRefusedError(MinerConnectionError):
    """The device actively refused the connection (nothing listens on the port)."""

    code = "connection_refused"


class MinerConnectionResetError(MinerConnectionError):
    """The peer reset the connection, or closed it before sending anything."""

    code = "connection_reset"


class MinerTimeoutError(MinerConnectionError):
    """A connect, read or overall deadline passed; `phase` says which."""

    code = "timeout"

    def __init__(self, message: str, *, phase: str) -> None:
        super().__init__(message)
        self.phase = phase


class MinerProtocolError(MinerError):
    """The reply could not be understood; the message names the first bytes of it."""

    code = "protocol_error"

    def __init__(self, message: str, *, data: bytes | str | None = None) -> None:
        if data is not None:
            message = f"{message}; reply starts {preview(data)}"
        super().__init__(message)
        self.head = preview(data) if data is not None else None


class MinerReplyTooLargeError(MinerProtocolError):
    """The reply exceeded the size cap before its terminator; reading stopped there."""

    code = "reply_too_large"


class MinerEmptyReplyError(MinerProtocolError):
    """The device accepted the request, then closed (or sent only its NUL) without a byte of reply: what
    cgminer does to a client its `api-allow` list does not name."""

    code = "empty_reply"


class MinerAPIError(MinerError):
    """The device answered with an error status (`STATUS=E`), e.g. 14 invalid command, 45 access denied."""

    code = "api_error"

    def __init__(self, command: str, status_code: int | None, message: str) -> None:
        super().__init__(f"{command}: device error {status_code}: {message}")
        self.command = command
        self.status_code = status_code
        self.msg = message


class MinerAuthError(MinerError):
    """The device rejected our credentials (the credentials themselves are never included)."""

    code = "auth_failed"
