"""Answers kept as rendered, given again while nothing they show has changed.

A list or a plan shows a team's stories and sprints and nothing else. The database raises the team's
revision in the same transaction as any change to them (migration 0013), so an answer rendered at one
revision is still the answer while the revision reads the same: asked again, it costs one indexed read
of one row instead of the backlog's statements, the readiness weighed for each row and the blocks built.

What else goes into an answer is in its key: the command and its words, the page, who asked where the
answer is theirs alone (`--mine`). The configuration is the process's own (a cache belongs to one
Deps), and lists and plans show no date relative to today. Errors are not kept: a refusal is raised
before anything is stored.

The revision is read first and the answer after, each statement seeing what was committed when it
began: an answer kept under a revision is of that revision or newer, never older, so nothing stale is
given once a change has committed. Each process keeps its own answers; the revision lives in the
database, so replicas agree."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

Answer = dict[str, Any]


class Answers:
    """At most `size` answers, the least recently given dropped first; size 0 keeps none."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[int, Answer]] = OrderedDict()

    def get(self, key: Hashable, revision: int) -> Answer | None:
        """The answer kept for `key` if it was rendered at `revision`; an older one is dropped."""
        found = self._kept.get(key)
        if found is None:
            return None
        if found[0] != revision:
            del self._kept[key]
            return None
        self._kept.move_to_end(key)
        return found[1]

    def put(self, key: Hashable, revision: int, answer: Answer) -> None:
        if self.size <= 0:
            return
        self._kept[key] = (revision, answer)
        self._kept.move_to_end(key)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)
