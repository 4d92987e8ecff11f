"""The follow-up pipeline: connections from introduction to outcome, the dashboard and the quarterly report."""
