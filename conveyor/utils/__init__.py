"""Small helpers shared by the task layer and the worker."""
