"""The logs: append-only, replayable records of every change to every checkout and hold."""
