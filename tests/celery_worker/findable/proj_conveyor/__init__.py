"""A project package whose app lives in proj_conveyor/conveyor.py."""
