"""Teacher clients shared by every env of one process, and that process's episode counters.

Contents:
    ProcessClient           -- a lazy handle on the process's shared `TeacherClient` for one
                               (service, namespace, curriculum, student); connects on first use.
    EPISODE_COUNTERS        -- the `EpisodeCounters` every hosted env of this process adds to.
    curriculum_stats        -- this process's counters and its clients' stats.
    flush_curriculum_clients -- push every queued outcome of this process to the teacher.
    discard_curriculum_buffers -- drop the tasks this process's clients buffered (a block switch).

Why per process: an RLlib EnvRunner steps ``num_envs_per_env_runner`` envs; one client for
all of them means one task buffer, one outbox and one stream of batched calls to the
service instead of one per env. The client is created lazily, at the first reset inside
the process that uses it: env creators are pickled to every runner, and a buffer, an outbox
and in-flight calls belong to the process that uses them. It is closed when the last env
using it closes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from openended.runtime.episodes import EpisodeCounters, TaskClient

__all__ = [
    "ProcessClient",
    "EPISODE_COUNTERS",
    "curriculum_stats",
    "flush_curriculum_clients",
    "discard_curriculum_buffers",
]

_LOCK = threading.Lock()
_CLIENTS: dict[tuple, Any] = {}  # (service, namespace, curriculum, student) -> TeacherClient
_REFS: dict[tuple, int] = {}  # live ProcessClient handles using each client

#: Resets, outcomes reported, abandoned episodes and task-id mismatches of every env hosted
#: in this process (RLlib's `CurriculumEnv` and `CurriculumMultiAgentEnv` share it).
EPISODE_COUNTERS = EpisodeCounters()


class ProcessClient:
    """A handle on the process's shared client for one curriculum and student.

    ``get()`` connects on first use (the shared client is built once per key and counted);
    ``release()`` drops this handle: the last one closes the client, the others flush it.
    """

    def __init__(
        self,
        service: str | Any,
        curriculum: str,
        student: str = "default",
        *,
        namespace: str | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.service = service
        self.curriculum = curriculum
        self.student = student
        self.namespace = namespace
        self.client_options = dict(client_options or {})
        self._key: tuple | None = None
        self._client: TaskClient | None = None

    def get(self) -> TaskClient:
        """The shared client, connecting (and counting this handle) on the first call."""
        if self._client is None:
            from openended.runtime.client import TeacherClient

            s = self.service
            key = (s if isinstance(s, str) else repr(s), self.namespace, self.curriculum, self.student)
            with _LOCK:
                client = _CLIENTS.get(key)
                if client is None:
                    # A name is resolved by the client once (ray.get_actor) and cached for the
                    # process; it is looked up again only if the service actor dies and restarts.
                    client = TeacherClient(
                        s, self.curriculum, self.student, namespace=self.namespace, **self.client_options
                    )
                    _CLIENTS[key] = client
                    _REFS[key] = 0
                _REFS[key] += 1
            self._key, self._client = key, client
        return self._client

    def release(self) -> None:
        """Drop this handle: the last one closes the shared client, the others flush it (idempotent)."""
        key, self._key, self._client = self._key, None, None
        if key is None:
            return
        with _LOCK:
            client = _CLIENTS.get(key)
            if client is None:
                return
            _REFS[key] -= 1
            last = _REFS[key] <= 0
            if last:
                del _CLIENTS[key], _REFS[key]
        if last:
            client.close()
        else:
            client.flush(wait=False)


def curriculum_stats() -> dict:
    """This process's counters and its clients' stats.

    On remote runners call it through
    ``algo.env_runner_group.foreach_env_runner(lambda r: curriculum_stats())``.
    """
    with _LOCK:
        clients = {"/".join(map(str, k)): c.stats() for k, c in _CLIENTS.items()}
    return {**EPISODE_COUNTERS.as_dict(), "pid": os.getpid(), "clients": clients}


def flush_curriculum_clients(wait: bool = True) -> int:
    """Flush every client of this process (``wait``: until the service has the outcomes); return how many.

    Use before reading teacher stats in tests or at the end of a run; during training the
    clients flush on their own.
    """
    with _LOCK:
        clients = list(_CLIENTS.values())
    for c in clients:
        c.flush(wait=wait)
    return len(clients)


def discard_curriculum_buffers() -> int:
    """Drop the tasks every client of this process has buffered; return how many were dropped.

    Call after the teacher was told to issue other tasks (a scenario's next learning block),
    on every env runner: ``foreach_env_runner(lambda r: discard_curriculum_buffers())``.
    """
    with _LOCK:
        clients = list(_CLIENTS.values())
    return sum(c.discard_buffered() for c in clients)
