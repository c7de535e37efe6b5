"""Result backends: one module per store, all implementing conveyor.backends.base."""
