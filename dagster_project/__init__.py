"""Dagster wiring of vprim: Definitions, jobs, schedules, sensors, partitions, profiles, CLI."""
