# (filled in by the part that lives here)
