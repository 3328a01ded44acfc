"""The sections that close the loop: feedback review and production monitoring (see
:mod:`flywheel.core.sections` for the rest; split only to keep each file short)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from flywheel.core.sections import PositiveInt, _Section


class FeedbackConfig(_Section):
    # Accept every inbox record that passes the dataset's suite as soon as it is reviewed
    # (`flywheel feedback accept --all` run by the service); off: a person decides.
    auto_accept: bool = False
    # Feedback records that may be merged into the data per model version and per sender
    # (guards against one client poisoning the data; 0: no cap).
    max_per_version: Annotated[int, Field(ge=0)] = 0
    max_per_sender: Annotated[int, Field(ge=0)] = 0


class MonitorConfig(_Section):
    # Share of predictions written to the prediction log (1.0: every prediction can get
    # feedback by its id; lower only to save disk on heavy traffic).
    sample_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    # The log is rotated into segments of this size and the oldest are deleted past
    # log_max_bytes, so the disk it uses is bounded whatever the traffic.
    log_segment_bytes: PositiveInt = 8 * 1024 * 1024
    log_max_bytes: PositiveInt = 256 * 1024 * 1024
    # The monitor flow's schedule ("" : no schedule), and how many of the latest logged
    # predictions it compares with the model's reference profile.
    cron: str = ""
    window: PositiveInt = 10_000
    # Fewer logged predictions than this in the window: no verdict (too few to test).
    min_window: PositiveInt = 50
    # A feature drifts when its test's p-value is below this; the model's inputs drift
    # when the share of drifted features reaches ``threshold``.
    p_value: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    # Training rows profiled at deploy time into the model's reference (a sample).
    reference_rows: PositiveInt = 1_000
    # Whether flywheel.drift.detected also starts a retrain (off: an alert only).
    retrain_on_drift: bool = False

    @model_validator(mode="after")
    def _check(self) -> MonitorConfig:
        if self.log_segment_bytes > self.log_max_bytes:
            raise ValueError("monitor.log_segment_bytes is above monitor.log_max_bytes")
        return self
