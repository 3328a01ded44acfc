"""The sections of the params file for the long-running services: the model server
(``serve``) and the watcher and schedule (``schedule``). Pipeline sections are in
:mod:`flywheel.core.sections`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from flywheel.core.sections import PositiveInt, _Section


class ServeConfig(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8008
    max_batch: PositiveInt = 64
    max_wait_ms: Annotated[float, Field(ge=0.0)] = 2.0
    max_body_bytes: PositiveInt = 8 * 1024 * 1024
    max_instances: PositiveInt = 256
    # Requests whose body is being read, parsed or decoded at once (on decode_threads
    # threads, never the event loop); past this, 503 + Retry-After before reading the body.
    max_decoding: PositiveInt = 64
    decode_threads: PositiveInt = 2
    # Client instances. An image's width x height is checked on its header, before any
    # pixel is decoded (decoded memory is at most 4 bytes a pixel). Formats: None accepts
    # what the served model was validated with (its card's validate.allowed_formats).
    # Modes: None accepts any mode that converts to the model's (16-bit, CMYK, palette...).
    max_image_pixels: PositiveInt = 4096 * 4096
    # ... and all the images of one request together, so one body of many small-file,
    # many-pixel images cannot hold a decode thread for long.
    max_request_pixels: PositiveInt = 4 * 4096 * 4096
    image_formats: tuple[str, ...] | None = None
    image_modes: tuple[str, ...] | None = None
    max_text_chars: PositiveInt = 100_000
    max_text_bytes: PositiveInt = 400_000
    # The feedback inbox: records and bytes it may hold before review empties it, and
    # records one sender (a hash of its bearer token and address) may have in it.
    feedback_max_records: PositiveInt = 10_000
    feedback_max_bytes: PositiveInt = 256 * 1024 * 1024
    feedback_max_per_sender: PositiveInt = 1_000

    @model_validator(mode="after")
    def _check_client_limits(self) -> ServeConfig:
        if self.image_formats is not None and not self.image_formats:
            raise ValueError("serve.image_formats is empty; list formats (PNG, JPEG) or omit it")
        if self.image_modes is not None and not self.image_modes:
            raise ValueError("serve.image_modes is empty; list modes (L, RGB) or omit it")
        if self.feedback_max_per_sender > self.feedback_max_records:
            raise ValueError("serve.feedback_max_per_sender is above serve.feedback_max_records")
        return self

    # Rows waiting for the model; past this, requests get 503 + Retry-After at once instead
    # of queueing into timeouts (back-pressure a load balancer or client can act on).
    max_queued_rows: PositiveInt = 4096
    # The name Open Inference Protocol clients call the served model by (/v2/models/<name>);
    # None: its task (image_classification, sentiment, ...).
    model_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] | None = None
    # How often the server reads the production alias (a small local file): half of it is
    # the mean wait between a promotion and the new model answering.
    poll_interval_s: Annotated[float, Field(gt=0.0)] = 0.25
    # A production version the server refused (it failed to load, e.g. out of memory) is
    # retried after a doubling back-off, from poll_interval_s up to this many seconds.
    reload_retry_max_s: Annotated[float, Field(gt=0.0)] = 60.0


class ScheduleConfig(_Section):
    cron: str = ""
    timezone: str = "UTC"
    # A burst of file events (a copy, an unpacked archive) keeps postponing the event; two
    # quiet seconds end it (watchfiles' own default is 1.6 s). Raise it for writers that
    # pause longer between files than this.
    debounce_s: Annotated[float, Field(ge=0.0)] = 2.0
    # Runs of one project never overlap, whatever started them (CLI, event, cron): a run
    # waits this long for the one holding the project, then is refused naming it.
    wait_for_run_s: Annotated[float, Field(ge=0.0)] = 900.0
    # The watcher looks this often whether the run of the data it announced last crashed
    # (killed, or cancelled before it started), and then announces it again, at most
    # max_crash_retries times; a run that failed is never retried for the same data.
    recheck_s: Annotated[float, Field(gt=0.0)] = 30.0
    max_crash_retries: Annotated[int, Field(ge=0)] = 3
