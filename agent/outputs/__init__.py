"""Outputs: JSON logs and the change log, the HTTP server and status page, Prometheus metrics, CloudWatch EMF,
and the `check` report. They read the runtime's state; nothing below imports them."""
