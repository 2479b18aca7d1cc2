"""Where the collector's samples go: the database, the MQTT broker, a JSON-lines file, and the spool.

Errors raised by this package all derive from one root::

    SinkError
    └── SinkUnavailableError   the broker or database cannot take samples now (spool and retry)
"""

from __future__ import annotations
