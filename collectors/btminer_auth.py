"""Whatsminer (btminer) write-command authentication: API v2's token and AES channel, API v3's signature.

API v2 (port 4028; WMPDF §4, pyasic 0.79 rpc/btminer.py):

- `get_token` answers Msg `{time, salt, newsalt}`. key = the hash part of md5-crypt(password, salt);
  sign = the hash part of md5-crypt(key + time, newsalt). `time` is used whole, as pyasic does (the
  firmware sends only the last four digits of its clock, so it is the same as the PDF's "last 4 chars").
- A write command is the JSON `{"cmd": ..., "token": sign, ...}`, NUL-padded to 16 bytes, encrypted with
  AES-256-ECB under sha256(key), base64'd and sent as `{"enc": 1, "data": ...}`. The reply is
  `{"enc": "<base64>"}` under the same key, or a plain error envelope when the device could not decrypt
  (Code 23 "enc json load err": the key, so the password, is wrong) or did not accept the token (135).

API v3 (port 4433; pyasic 0.79 BTMinerV3RPCAPI): `set.*` commands carry `ts`, `account` and `token` =
the first 8 characters of base64(sha256(cmd + password + salt + ts)), the salt from `get.device.info`.

Pure functions, no I/O. The password, key and sign never leave here in a log line or an exception.
ECB is the firmware's choice, not ours; AES comes from `cryptography` (a dependency for this alone).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from collectors.errors import MinerProtocolError

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MAGIC = b"$1$"
# md5-crypt's output: bytes of the final digest taken three at a time, in this order, then byte 11.
_GROUPS = ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))


def md5_crypt(password: str, salt: str) -> str:
    """The FreeBSD/glibc `$1$` md5-crypt of `password` with `salt` (at most 8 characters used):
    `$1$<salt>$<22-character hash>`."""
    pw, sa = password.encode(), salt.encode()[:8]
    alternate = hashlib.md5(pw + sa + pw).digest()
    ctx = pw + _MAGIC + sa
    for left in range(len(pw), 0, -16):
        ctx += alternate[: min(16, left)]
    bits = len(pw)
    while bits:
        ctx += b"\x00" if bits & 1 else pw[:1]
        bits >>= 1
    final = hashlib.md5(ctx).digest()
    for round_ in range(1000):  # the algorithm's fixed stretching
        step = pw if round_ & 1 else final
        if round_ % 3:
            step += sa
        if round_ % 7:
            step += pw
        step += final if round_ & 1 else pw
        final = hashlib.md5(step).digest()
    out = "".join(_b64_from_24bit(final[a], final[b], final[c], 4) for a, b, c in _GROUPS)
    out += _b64_from_24bit(0, 0, final[11], 2)
    return f"$1${sa.decode()}${out}"


def _b64_from_24bit(b2: int, b1: int, b0: int, count: int) -> str:
    value = (b2 << 16) | (b1 << 8) | b0
    chars = []
    for _ in range(count):
        chars.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(chars)


def _hash_part(crypted: str) -> str:
    return crypted.split("$")[3]


@dataclass(frozen=True, slots=True)
class V2Token:
    """What one `get_token` answer gives: the sign to put in commands and the AES key. Its repr shows
    neither."""

    sign: str
    aes_key: bytes

    def __repr__(self) -> str:
        return "V2Token(<hidden>)"

    __str__ = __repr__


def v2_token(password: str, time: str, salt: str, newsalt: str) -> V2Token:
    """Derive API v2's sign and AES key from the admin password and a `get_token` answer."""
    key = _hash_part(md5_crypt(password, salt))
    sign = _hash_part(md5_crypt(key + time, newsalt))
    return V2Token(sign=sign, aes_key=hashlib.sha256(key.encode()).digest())


def v2_encrypt(token: V2Token, command: dict[str, object]) -> bytes:
    """The request bytes for a write command: `{"enc":1,"data":<base64 AES-256-ECB>}`."""
    body = json.dumps({**command, "token": token.sign}).encode()
    body += b"\x00" * (-len(body) % 16)
    encryptor = Cipher(algorithms.AES(token.aes_key), modes.ECB()).encryptor()
    data = base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode()
    return json.dumps({"enc": 1, "data": data}).encode()


def v2_decrypt(token: V2Token, enc: str) -> dict[str, object]:
    """The reply envelope inside an `{"enc": ...}` answer; MinerProtocolError when it is not one."""
    try:
        raw = base64.b64decode(enc, validate=False)
        if not raw or len(raw) % 16:
            raise MinerProtocolError("Whatsminer encrypted reply is not whole AES blocks")
        decryptor = Cipher(algorithms.AES(token.aes_key), modes.ECB()).decryptor()
        plain = (decryptor.update(raw) + decryptor.finalize()).rstrip(b"\x00")
        value = json.loads(plain.decode())
    except (binascii.Error, ValueError) as exc:
        raise MinerProtocolError("Whatsminer encrypted reply does not decrypt to JSON") from exc
    if not isinstance(value, dict):
        raise MinerProtocolError("Whatsminer encrypted reply is not a JSON object")
    return value


def v3_token(command: str, password: str, salt: str, ts: int) -> str:
    """API v3's write token: the first 8 characters of base64(sha256(command + password + salt + ts))."""
    digest = hashlib.sha256(f"{command}{password}{salt}{ts}".encode()).digest()
    return base64.b64encode(digest).decode()[:8]
