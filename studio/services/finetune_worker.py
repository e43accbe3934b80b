"""The fine-tuning worker process: ``python -m studio.services.finetune_worker JOB_ID``.

:func:`studio.services.finetune.start_worker` starts one per job, detached from the
process that asked (the UI, the gateway, the CLI), so training never runs there and the
caller may end at once. The worker claims the job, carries it out with its backend, and
ends it: succeeded (with the model registered), failed with the reason, or cancelled.
A worker killed mid-job leaves the job running without heartbeats; a new worker started
by :func:`~studio.services.finetune.resume_job` goes on from where it stopped.

Rules: the worker acts as :data:`~studio.core.identity.WORKER`, for a job that was
checked when it was queued.
"""

from __future__ import annotations

import logging
import sys

from studio.core.errors import StudioError
from studio.core.identity import WORKER, acting_as
from studio.services.finetune_records import JobCancelled, claim, finish

__all__ = ["main", "run_job"]

log = logging.getLogger(__name__)


def run_job(job_id: int) -> None:
    """Claim and carry out one job in this process (tests call it directly)."""
    with acting_as(WORKER):
        params = claim(job_id)
        if params is None:
            return
        try:
            if params.get("backend") == "openai":
                from studio.services.finetune_openai import run_openai_job

                run_openai_job(job_id, params)
            else:
                from studio.services.finetune_local import run_local_job

                run_local_job(job_id, params)
        except JobCancelled:
            finish(job_id, "cancelled")
        except StudioError as exc:
            finish(job_id, "failed", str(exc))
        except Exception as exc:  # a worker must report, never die silently
            log.exception("fine-tuning job %s failed", job_id)
            finish(
                job_id, "failed", f"The worker stopped unexpectedly ({type(exc).__name__}: {exc})."
            )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isascii() or not args[0].isdigit():
        print("usage: python -m studio.services.finetune_worker JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run_job(int(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
