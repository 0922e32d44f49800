"""One night end to end, as a DAG of content-addressed jobs.

``run_night`` scans the inputs, plans master jobs (qualified dark and bias sets) and light jobs,
runs what the registry does not already hold on an executor (in-process or Dask), registers every
artifact with its provenance, and writes ``frame_report.csv``, ``masters.csv``, ``catalog.csv``,
``decisions.jsonl``, ``qa/`` and ``logs/<night>.jsonl`` into the work directory::

    <workdir>/registry.sqlite
    <workdir>/artifacts/masters/<instrument>/<config-signature>/<key16>.fits
    <workdir>/calibrated/<night>/<session>/<light-name>-<content-hash10>.fits

Paths inside the work directory are relative to it; ``docs/pipeline.md`` describes the layout,
the content hashes that verify every artifact, and ``nights/<night>/`` (every run of a night).

``plan_night`` shows the plan without running it.
"""

from darkflow.pipeline.executors import DaskExecutor, LocalExecutor, make_executor
from darkflow.pipeline.plan import JobPlan, LightJob, MasterJob, light_key, master_key
from darkflow.pipeline.reasons import LightReason, MasterReason
from darkflow.pipeline.records import (
    FRAME_REPORT_COLUMNS,
    FRAME_REPORT_EXTRA,
    MASTERS_COLUMNS,
    MASTERS_EXTRA,
)
from darkflow.pipeline.run import RunResult, plan_night, run_night
from darkflow.pipeline.sets import FrameSet, accepted_isolated, build_frame_sets

__all__ = [
    "FRAME_REPORT_COLUMNS",
    "FRAME_REPORT_EXTRA",
    "MASTERS_COLUMNS",
    "MASTERS_EXTRA",
    "DaskExecutor",
    "FrameSet",
    "JobPlan",
    "LightJob",
    "LightReason",
    "LocalExecutor",
    "MasterJob",
    "MasterReason",
    "RunResult",
    "accepted_isolated",
    "build_frame_sets",
    "light_key",
    "make_executor",
    "master_key",
    "plan_night",
    "run_night",
]
