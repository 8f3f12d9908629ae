"""Silence, at the source, the warnings a user of openended cannot act on; keep every other.

Why: every RLlib run printed RLlib's "you are running PPO on the new API stack" (openended
always uses it), a deprecation of ``RLModule(config=...)`` that RLlib's own default
modules trigger, and Tune's "install gputil" on CPU machines. None names anything a user
could change. Each is matched by its exact text, so any other warning from the same code
still shows. (gym 0.26's import notice, printed because procgen imports gym, is muted
where procgen is imported: `openended.envs.procgen_levels.procgen_module`.)

Contents:
    UNACTIONABLE       -- the message fragments dropped.
    UnactionableFilter -- the logging filter.
    quiet_ray_logs     -- attach it to Ray's loggers and handlers (idempotent; per process).
"""

from __future__ import annotations

import logging

__all__ = ["UNACTIONABLE", "EMITTING_LOGGERS", "quiet_ray_logs", "UnactionableFilter"]

#: Fragments of log messages nobody using openended can act on.
UNACTIONABLE = (
    "on the new API stack! This is the new default behavior for this algorithm",
    "`RLModule(config=[RLModuleConfig object])` has been deprecated",
    "Install gputil for GPU system monitoring",
)


class UnactionableFilter(logging.Filter):
    """Drops records whose message contains one of `UNACTIONABLE`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for an unactionable message, True for every other."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: let logging report it as usual
            return True
        return not any(fragment in message for fragment in UNACTIONABLE)


_FILTER = UnactionableFilter()


#: The loggers that emit them. A logger's filters see only the records created on it, so each
#: emitting logger gets the filter (handlers may be added later, when RLlib sets up its own).
EMITTING_LOGGERS = ("ray", "ray.rllib", "ray.rllib.algorithms.algorithm_config", "ray.tune.utils.util")


def quiet_ray_logs() -> None:
    """Attach the filter to the loggers that emit `UNACTIONABLE` messages and to their handlers."""
    for name in EMITTING_LOGGERS:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if _FILTER not in target.filters:
                target.addFilter(_FILTER)
