"""What leaves the app: the `stats` report, the weekly summary and its exports."""
