"""Speech: who is talking in a face track (Light-ASD active-speaker model, run in numpy)."""
