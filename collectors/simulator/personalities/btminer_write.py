"""The device side of Whatsminer's write commands: API v2's token and AES channel, API v3's signature.

Written from the protocol (WMPDF §4 as summarised in pyasic 0.79's rpc/btminer.py and the project's
protocol notes), not from collectors/btminer_auth.py: the simulator must catch the collectors' mistakes,
and tests point pyasic itself (passlib's md5-crypt) at it to prove this side independently.

API v2: `get_token` gives `time` (the last four digits of the clock), the device's fixed `salt` and a
fresh `newsalt`; the device keeps the sign it expects for each token it issued (at most 32, for 30
minutes). A write arrives as `{"enc": 1, "data": base64(AES-256-ECB(json))}` under sha256 of the hash part
of md5-crypt(password, salt). Data that is not base64 answers Code 137; that does not decrypt to JSON
(the client used another password) Code 23 "enc json load err", in clear, as the firmware does
(satoshi-anonymoto/whatsminer-api#3); a token the device did not issue, Code 135 "check token error".

API v3: `set.*` carries `ts`, `account` and `token`, the first 8 characters of
base64(sha256(cmd + password + salt + ts)); a wrong one answers code -2 "token error" (no capture; the
v3 envelope with a negative code, as for an unknown command).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from collectors.simulator.device import SimDevice

TOKEN_LIFETIME_S = 30 * 60
MAX_TOKENS = 32
FACTORY_V2_PASSWORD = "admin"
FACTORY_V3_PASSWORD = "super"  # the `super` account's, as pyasic 0.79 assumes
V3_ACCOUNT = "super"
_CRYPT64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _crypt_md5(secret: bytes, salt: bytes) -> bytes:
    """The hash part (22 characters) of `$1$` md5-crypt."""
    salt = salt[:8]
    inner = hashlib.md5(secret + salt + secret).digest()
    h = hashlib.md5()
    h.update(secret + b"$1$" + salt)
    n = len(secret)
    h.update((inner * (n // 16 + 1))[:n])
    i = n
    while i > 0:
        h.update(secret[:1] if not i & 1 else b"\0")
        i >>= 1
    digest = h.digest()
    for r in range(1000):
        part = hashlib.md5()
        part.update(secret if r % 2 else digest)
        if r % 3:
            part.update(salt)
        if r % 7:
            part.update(secret)
        part.update(digest if r % 2 else secret)
        digest = part.digest()
    out = bytearray()
    for a, b, c, chars in ((0, 6, 12, 4), (1, 7, 13, 4), (2, 8, 14, 4), (3, 9, 15, 4), (4, 10, 5, 4)):
        word = digest[a] << 16 | digest[b] << 8 | digest[c]
        out += bytes(_CRYPT64[(word >> (6 * k)) & 63] for k in range(chars))
    out += bytes(_CRYPT64[(digest[11] >> (6 * k)) & 63] for k in range(2))
    return bytes(out)


def v2_password(dev: SimDevice) -> str:
    """The admin password the device checks writes against."""
    return dev.web_password or FACTORY_V2_PASSWORD


def v2_writes_open(dev: SimDevice) -> bool:
    """btminer refuses write commands while the admin password is the factory one (pyasic #112)."""
    return dev.web_password is not None


def device_salt(dev: SimDevice) -> str:
    """The device's fixed md5-crypt salt (8 characters of the crypt alphabet)."""
    rng = random.Random(dev.seed * 131 + 7)
    return "".join(chr(rng.choice(_CRYPT64)) for _ in range(8))


def _key(dev: SimDevice) -> bytes:
    return _crypt_md5(v2_password(dev).encode(), device_salt(dev).encode())


def _aes(dev: SimDevice) -> Cipher[modes.ECB]:
    return Cipher(algorithms.AES(hashlib.sha256(_key(dev)).digest()), modes.ECB())


def issue_token(dev: SimDevice, now: float) -> dict[str, object]:
    """`get_token` Msg; remembers the sign the device will accept for it."""
    newsalt = "".join(chr(dev.rng.choice(_CRYPT64)) for _ in range(8))
    when = str(int(now))[-4:]
    sign = _crypt_md5(_key(dev) + when.encode(), newsalt.encode()).decode()
    live = [(s, t) for s, t in dev.wm_tokens if now - t < TOKEN_LIFETIME_S]
    dev.wm_tokens = [*live[-(MAX_TOKENS - 1) :], (sign, now)]
    return {"time": when, "salt": device_salt(dev), "newsalt": newsalt}


class WriteRefused(Exception):
    """A write the device will not run: its Code and Msg, answered in clear."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def open_write(dev: SimDevice, data: object, now: float) -> dict[str, object]:
    """The command inside an `{"enc":1,"data":...}` request, its token checked; WriteRefused if not."""
    if not isinstance(data, str):
        raise WriteRefused(23, "enc json load err")
    try:
        raw = base64.b64decode(data.encode(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WriteRefused(137, "base64 decode error") from exc
    if not raw or len(raw) % 16:
        raise WriteRefused(23, "enc json load err")
    dec = _aes(dev).decryptor()
    plain = (dec.update(raw) + dec.finalize()).rstrip(b"\0")
    try:
        command = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WriteRefused(23, "enc json load err") from exc
    if not isinstance(command, dict) or not isinstance(command.get("cmd"), str):
        raise WriteRefused(14, "invalid cmd")
    signs = {s for s, t in dev.wm_tokens if now - t < TOKEN_LIFETIME_S}
    if command.get("token") not in signs:
        raise WriteRefused(135, "check token error")
    return command


def seal(dev: SimDevice, reply: dict[str, object]) -> dict[str, object]:
    """A write's reply, encrypted under the device's key: `{"enc": "<base64>"}`."""
    body = json.dumps(reply, separators=(",", ":")).encode()
    body += b"\0" * ((16 - len(body) % 16) % 16)
    enc = _aes(dev).encryptor()
    return {"enc": base64.b64encode(enc.update(body) + enc.finalize()).decode()}


def v3_password(dev: SimDevice) -> str:
    """The `super` account's password for API v3 writes."""
    return dev.web_password or FACTORY_V3_PASSWORD


def v3_signed(dev: SimDevice, request: dict[str, object], salt: str) -> bool:
    """True when a `set.*` request carries the account and token the device expects."""
    cmd, ts, token = request.get("cmd"), request.get("ts"), request.get("token")
    if request.get("account") != V3_ACCOUNT or not isinstance(ts, int) or not isinstance(token, str):
        return False
    material = f"{cmd}{v3_password(dev)}{salt}{ts}".encode()
    return base64.b64encode(hashlib.sha256(material).digest())[:8].decode() == token
