"""Orchestration of the layers below: launch, exec, status, stop/start/down, jobs."""
