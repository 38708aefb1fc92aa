"""Validation: compare the simulator's predictions with measured runs.

A *measured-runs file* is a CSV with one measured point per row (the format is the
pydantic model :class:`~simulator.validation.cases.MeasuredCase`; its JSON Schema is
``measured_case_schema()``). Each row describes a cluster, a workload and a strategy
in a few columns, or points to a full scenario file; :func:`validate` simulates every
row and returns a DataFrame with the measured value, the prediction and the relative
error ``(predicted - measured) / measured``. A malformed row or a case that cannot be
simulated gets its own error message; the other rows still run.

    from simulator.validation import validate, summarize
    df = validate("scenarios/validation/published_cases.csv")
    summarize(df)   # n, median / mean / p90 / max absolute percentage error

Modules: ``cases`` (row model, CSV reading with per-row errors), ``run`` (row ->
scenario -> prediction, compute calibration from a measured one-GPU throughput,
collectives simulated alone), ``report`` (table, summary, JSON, plot).
"""

from .cases import CaseError, MeasuredCase, measured_case_schema, read_cases
from .report import summarize, to_json_dict, validation_plot
from .run import predict_case, validate

__all__ = [
    "CaseError",
    "MeasuredCase",
    "measured_case_schema",
    "predict_case",
    "read_cases",
    "summarize",
    "to_json_dict",
    "validate",
    "validation_plot",
]
