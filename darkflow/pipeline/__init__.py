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

from __future__ import annotations

from darkflow._lazy import lazy_names

# Imported on first use: ``import darkflow.pipeline`` (or one of its light modules) does not pay
# for numba, scipy and the matching code until a run needs them.
_HOMES = {
    "DaskExecutor": "executors",
    "LocalExecutor": "executors",
    "make_executor": "executors",
    "JobPlan": "plan",
    "LightJob": "plan",
    "MasterJob": "plan",
    "light_key": "plan",
    "master_key": "plan",
    "LightReason": "darkflow.triage.reasons",
    "MasterReason": "darkflow.triage.reasons",
    "FRAME_REPORT_COLUMNS": "records",
    "FRAME_REPORT_EXTRA": "records",
    "MASTERS_COLUMNS": "records",
    "MASTERS_EXTRA": "records",
    "RunResult": "result",
    "plan_night": "run",
    "run_night": "run",
    "FrameSet": "sets",
    "accepted_isolated": "sets",
    "build_frame_sets": "sets",
}

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


__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals(), __all__)
