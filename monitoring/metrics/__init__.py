"""Service figures from the logs: latency sketches and percentiles, error rates, traffic anomalies (gaps, spikes), SLO breaches and incidents."""
