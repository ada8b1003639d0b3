"""Repository scripts (the demo); not part of the installed package."""
