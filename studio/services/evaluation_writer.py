"""Where an evaluation's scores are stored as they are made, off the event loop.

Rules: no check here; the writer thread acts as the evaluation's caller.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from studio.core.identity import current_actor, set_actor
from studio.evaluators.report import Score
from studio.store import session_scope
from studio.store.tables import EvaluationScore, ModelCall, utcnow

__all__ = ["FLUSH_EVERY", "FLUSH_SECONDS", "ScoreWriter"]

FLUSH_EVERY = 100  # scores written per transaction, at most
FLUSH_SECONDS = 0.5  # and at least this often while model-backed scores arrive


class ScoreWriter:
    """Buffers scores, and the usage of the model calls behind them, and writes them in
    small transactions on a thread of its own, one transaction at a time, so the event
    loop never waits on the database (scores stored already are skipped). A failed
    write is raised by the next :meth:`add` or by :meth:`flush`."""

    def __init__(self, evaluation_id: int, run_ids: dict[str, int], versions: dict[str, str]):
        self.evaluation_id, self.run_ids, self.versions = evaluation_id, run_ids, versions
        self.scores: list[dict[str, Any]] = []
        self.usage: list[dict[str, Any]] = []
        self.written = 0
        self.last = time.monotonic()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[int]] = []

    def add(self, score: Score) -> None:
        v = score.verdict
        self.scores.append(
            {
                "evaluation_id": self.evaluation_id,
                "evaluator_key": score.evaluator,
                "evaluator_version": self.versions[score.evaluator],
                "run_id": self.run_ids[score.contender],
                "row_index": score.row,
                "sample_index": score.sample,
                "score": v.score,
                "passed": v.passed,
                "reason": v.reason,
                "error": v.error,
                "created_at": utcnow(),
            }
        )
        self._maybe_write()

    def add_usage(self, values: dict[str, Any]) -> None:
        self.usage.append(values)
        self._maybe_write()

    def _maybe_write(self) -> None:
        for done in [f for f in self._pending if f.done()]:
            self._pending.remove(done)
            self.written += done.result()  # raises a failed write here
        if len(self.scores) >= FLUSH_EVERY or time.monotonic() - self.last > FLUSH_SECONDS:
            self._submit()

    def _submit(self) -> None:
        scores, usage = self.scores, self.usage
        self.scores, self.usage, self.last = [], [], time.monotonic()
        if scores or usage:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(  # the writer acts as the evaluation's caller
                    1,
                    thread_name_prefix="evaluation-writer",
                    initializer=set_actor,
                    initargs=(current_actor(),),
                )
            self._pending.append(self._pool.submit(_write_batch, scores, usage))

    def flush(self) -> None:
        """Write what is buffered and wait until every write is done (blocking)."""
        self._submit()
        pending, self._pending = self._pending, []
        try:
            for future in pending:
                self.written += future.result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


def _write_batch(scores: list[dict[str, Any]], usage: list[dict[str, Any]]) -> int:
    """One transaction of scores and usage rows; the scores written."""
    try:
        with session_scope() as session:
            if usage:
                session.execute(insert(ModelCall), usage)
            if scores:
                session.execute(insert(EvaluationScore), scores)
        return len(scores)
    except IntegrityError:  # another process scored some of them: keep the rest
        pass
    if usage:
        with session_scope() as session:
            session.execute(insert(ModelCall), usage)
    written = 0
    for one in scores:
        try:
            with session_scope() as session:
                session.execute(insert(EvaluationScore), [one])
            written += 1
        except IntegrityError:
            continue
    return written
