"""Every exception collectors raises is under the one root, MinerError."""

from __future__ import annotations

import inspect

from collectors import errors


def test_every_collectors_exception_is_under_miner_error() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, BaseException)]
    assert len(classes) >= 8
    assert all(issubclass(c, errors.MinerError) for c in classes)


def test_protocol_error_names_the_start_of_the_bytes() -> None:
    exc = errors.MinerProtocolError("bad", data=b"Socket connect failed: Connection refused\n")
    assert "Socket connect failed" in str(exc)
