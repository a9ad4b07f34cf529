"""Log formats for the command and the service: text or JSON lines, whose extras hold
pseudonyms and counts, never names."""

from __future__ import annotations

import json
import logging
import sys


class Formatter(logging.Formatter):
    """``time level logger: message key=value ...``; extras hold pseudonyms, never names."""

    _std = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in self._std}
        return base + "".join(f" {k}={v}" for k, v in sorted(extras.items()))


class JsonFormatter(Formatter):
    """One JSON object per line: time, level, logger, message and the extras (pseudonyms and
    counts, never names)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        data.update({k: v for k, v in record.__dict__.items() if k not in self._std})
        return json.dumps(data, default=str)


def setup_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("leerdossier")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def json_logs(level: str, also: tuple[str, ...] = ()) -> None:
    """JSON lines on stderr for the connector's loggers (and, at WARNING, for the libraries
    named in ``also``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name, lvl in (("leerdossier", level), *((n, "WARNING") for n in also)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(lvl)
        logger.propagate = False
