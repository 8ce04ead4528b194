"""Filters, time windows and buckets shared by every query over the logs."""
