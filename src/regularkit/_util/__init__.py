"""Private helpers shared by every room: checks, atomic files and figures, random numbers,
parameter selection, the environment record, number formatting.  Not a public API."""
