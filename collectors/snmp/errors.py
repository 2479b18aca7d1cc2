"""The exception tree of `collectors.snmp`: everything reading a PDU over SNMP can go wrong.

    PduError
    ├── PduConnectionError            the UDP conversation failed (unresolvable host, socket error)
    │   └── PduTimeoutError               no answer within timeout x (retries + 1); with SNMPv2c this is
    │                                     also what a wrong community looks like (the agent stays silent)
    ├── PduProtocolError              the agent answered something we could not use (error status,
    │                                 non-increasing walk, a value of the wrong type)
    │   └── PduUnsupportedError           the agent is not a PDU family we know (APC, Raritan, ServerTech)
    └── PduAuthError                  the agent refused access (authorizationError, noAccess, USM errors)

pysnmp's error indications and error statuses are translated into this tree at exactly one place,
`transport.py`, always with `raise ... from`. No exception carries a community string.
"""

from __future__ import annotations


class PduError(Exception):
    """Root of every error raised while reading a PDU."""


class PduConnectionError(PduError):
    """The request could not be carried to the agent and back."""


class PduTimeoutError(PduConnectionError):
    """The agent did not answer in time (or ignored a wrong SNMPv2c community)."""


class PduProtocolError(PduError):
    """The agent's answer could not be used."""


class PduUnsupportedError(PduProtocolError):
    """The agent answered, but is not an APC, Raritan or ServerTech PDU."""


class PduAuthError(PduError):
    """The agent refused our credentials or view."""
